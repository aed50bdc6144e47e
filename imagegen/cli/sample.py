"""``imagegen sample RUN_DIR``: draw samples from a trained model into an .npz or a PNG grid, or (conditional
models, ``--num-per-class``) into a labelled image folder or zip (:mod:`imagegen.sampling.labelled`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import torch

from ..errors import ConfigError
from ..sampling import SAMPLE_BATCH, generate, load_run, save_images


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--num", type=int, default=64, show_default=True, help="number of images")
@click.option("--seed", type=int, default=0, show_default=True, help="sampling seed")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help=".npz (key 'images': uint8 [N, H, W, C]) or .png/.jpg grid; with --num-per-class a .zip or a "
                   "folder of class sub-folders of PNGs")
@click.option("--num-per-class", type=int, default=None,
              help="conditional models: write N samples of every class as a labelled image folder/zip (one "
                   "sub-folder per class, named by the run's class names or the label) instead of --num images; "
                   "with --class-grid, N images per row of the grid")
@click.option("--batch-size", type=int, default=SAMPLE_BATCH, show_default=True,
              help="images per forward pass; the same --seed gives the same images only with the same --batch-size "
                   "(the default is evaluate's: for an unconditional run --num N draws the N images evaluate "
                   "--num-samples N scores)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--class", "class_", type=int, default=None, help="class label for conditional models")
@click.option("--class-grid", is_flag=True,
              help="conditional models: one row per class (--num // classes per row, or --num-per-class)")
@click.option("--temperature", type=float, default=None,
              help="autoregressive models: divides the logits (1 = the model's distribution, the default)")
@click.option("--method", type=click.Choice(["auto", "fast", "naive"]), default=None,
              help="autoregressive models: fast (incremental cache) or naive (the whole network per pixel); "
                   "the same seed gives the same images  [default: auto = fast where available]")
@click.option("--truncation-psi", type=float, default=None,
              help="style-based models: pull w toward its average, w_avg + psi (w - w_avg); 1 = off, 0 = the "
                   "average image  [default: 1]")
@click.option("--truncation-cutoff", type=int, default=None,
              help="style-based models: truncate only the first N layers' w (coarse styles)  [default: all]")
@click.option("--allow-extrapolation", is_flag=True, help="accept --truncation-psi > 1 (exaggerates styles)")
@click.option("--noise-mode", type=click.Choice(["random", "const", "none"]), default=None,
              help="style-based models: per-pixel noise drawn with --seed, a fixed map per layer, or off  "
                   "[default: random]")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def sample(run_dir: Path, num: int, seed: int, out: Path, batch_size: int, device: str,
           class_: Optional[int], class_grid: bool, temperature: Optional[float], method: Optional[str],
           truncation_psi: Optional[float], truncation_cutoff: Optional[int], allow_extrapolation: bool,
           noise_mode: Optional[str], force: bool, num_per_class: Optional[int]) -> None:
    """Draw NUM samples from the model in RUN_DIR (its latest checkpoint, or a checkpoint directory).

    Autoregressive models (pixelcnn, pixelrnn) generate one pixel at a time and show a progress bar.

    \b
    Examples:
      imagegen sample runs/mnist-cgan --num 64 --class-grid --out grid.png
      imagegen sample runs/mnist-cgan --class-grid --num-per-class 8 --out grid.png
      imagegen sample runs/mnist-cgan --num-per-class 1000 --out synth.zip   # a labelled data set
    """
    if num_per_class is not None and not class_grid:
        _sample_per_class(run_dir, num_per_class, seed, out, batch_size, device, class_, temperature,
                          method, truncation_psi, truncation_cutoff, allow_extrapolation, noise_mode, force)
        return
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be ≥ 1")
    if num_per_class is not None and num_per_class < 1:
        raise ConfigError(f"--num-per-class {num_per_class}: must be >= 1")
    model = load_run(run_dir, device=device)
    options = {**autoregressive_options(model, temperature, method),
               **style_options(model, truncation_psi, truncation_cutoff, noise_mode, allow_extrapolation)}
    labels, nrow = None, None
    k = model.num_classes
    if (class_ is not None or class_grid) and not k:
        raise ConfigError(f"{model.model_name} is unconditional; drop --class/--class-grid")
    if class_ is not None and class_grid:
        raise ConfigError("use either --class or --class-grid")
    if class_ is not None:
        if not 0 <= class_ < k:
            raise ConfigError(f"--class {class_}: the model has classes 0..{k - 1}")
        labels = torch.full((num,), class_, dtype=torch.int64)
    elif class_grid:
        per = num_per_class if num_per_class is not None else max(1, num // k)
        labels = torch.arange(k).repeat_interleave(per)
        num, nrow = len(labels), per
    img = generate(model, num, seed=seed, batch_size=batch_size, labels=labels, **options)
    click.echo(save_images(img, out, labels=labels, nrow=nrow))


def _sample_per_class(run_dir: Path, num_per_class: int, seed: int, out: Path, batch_size: int, device: str,
                      class_: Optional[int], temperature: Optional[float], method: Optional[str],
                      truncation_psi: Optional[float], truncation_cutoff: Optional[int], allow_extrapolation: bool,
                      noise_mode: Optional[str], force: bool) -> None:
    """``sample --num-per-class``: a labelled image folder or zip
    (:func:`~imagegen.sampling.labelled.save_labelled_samples`)."""
    from ..sampling.labelled import check_labelled_out, save_labelled_samples

    if class_ is not None:
        raise ConfigError("--num-per-class writes every class; drop --class")
    if num_per_class < 1:
        raise ConfigError(f"--num-per-class {num_per_class}: must be >= 1")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be ≥ 1")
    check_labelled_out(out, force)  # before loading the model
    model = load_run(run_dir, device=device)
    options = {**autoregressive_options(model, temperature, method),
               **style_options(model, truncation_psi, truncation_cutoff, noise_mode, allow_extrapolation)}
    names = ((model.checkpoint_meta.get("dataset") or {}).get("class_names")  # type: ignore[attr-defined]
             if hasattr(model, "checkpoint_meta") else None)
    click.echo(save_labelled_samples(model, out, num_per_class, seed=seed, batch_size=batch_size, class_names=names,
                                     force=force, **options))


def autoregressive_options(model: object, temperature: Optional[float], method: Optional[str]) -> dict:
    """The sampling options of an autoregressive model (with a progress bar); ConfigError if they
    are given to another model."""
    from ..models.autoregressive import AutoregressiveModel
    from ..nn.pixel_heads import check_temperature

    if not isinstance(model, AutoregressiveModel):
        if temperature is not None or method is not None:
            raise ConfigError(f"--temperature and --method apply to autoregressive models (pixelcnn, "
                              f"pixelrnn), not {getattr(model, 'model_name', '')}; drop them")
        return {}
    return {"temperature": check_temperature(1.0 if temperature is None else temperature),
            "method": method or "auto", "progress": True}


def style_options(model: object, truncation_psi: Optional[float], truncation_cutoff: Optional[int],
                  noise_mode: Optional[str], allow_extrapolation: bool = False) -> dict:
    """The sampling options of a style-based model (``has_style_latents``), checked; ConfigError if they
    are given to another model or out of range (psi outside [0, 1] without ``allow_extrapolation``,
    a cutoff outside 1..num_ws)."""
    given = truncation_psi is not None or truncation_cutoff is not None or noise_mode is not None
    if not getattr(model, "has_style_latents", False):
        if given:
            raise ConfigError(f"--truncation-psi, --truncation-cutoff and --noise-mode apply to style-based "
                              "models with a mapping network (stylegan2, stylegan), not "
                              f"{getattr(model, 'model_name', '')}; drop them")
        return {}
    psi = 1.0 if truncation_psi is None else float(truncation_psi)
    if psi < 0 or (psi > 1 and not allow_extrapolation):
        raise ConfigError(f"--truncation-psi {truncation_psi}: use a value in [0, 1] (1 = no truncation), or "
                          "add --allow-extrapolation for values above 1")
    num_ws = getattr(model, "num_ws")
    if truncation_cutoff is not None and not 1 <= truncation_cutoff <= num_ws:
        raise ConfigError(f"--truncation-cutoff {truncation_cutoff}: the model has {num_ws} style layers; "
                          f"use 1..{num_ws}")
    return {"truncation_psi": psi, "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode or "random"}


def register(cli: click.Group) -> None:
    cli.add_command(sample)
