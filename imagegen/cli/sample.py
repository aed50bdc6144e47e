"""``imagegen sample RUN_DIR``: draw samples from a trained model into an .npz or a PNG grid."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import torch

from ..errors import ConfigError
from ..sampling import generate, load_run, save_images


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--num", type=int, default=64, show_default=True, help="number of images")
@click.option("--seed", type=int, default=0, show_default=True, help="sampling seed")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".npz (key 'images': uint8 [N, H, W, C]) or .png/.jpg grid")
@click.option("--batch-size", type=int, default=256, show_default=True, help="images per forward pass")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--class", "class_", type=int, default=None, help="class label for conditional models")
@click.option("--class-grid", is_flag=True, help="conditional models: one row per class")
@click.option("--temperature", type=float, default=None,
              help="autoregressive models: divides the logits (1 = the model's distribution, the default)")
@click.option("--method", type=click.Choice(["auto", "fast", "naive"]), default=None,
              help="autoregressive models: fast (incremental cache) or naive (the whole network per pixel); "
                   "the same seed gives the same images  [default: auto = fast where available]")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def sample(run_dir: Path, num: int, seed: int, out: Path, batch_size: int, device: str,
           class_: Optional[int], class_grid: bool, temperature: Optional[float], method: Optional[str],
           force: bool) -> None:
    """Draw NUM samples from the model in RUN_DIR (its latest checkpoint, or a checkpoint directory).

    Autoregressive models (pixelcnn, pixelrnn) generate one pixel at a time and show a progress bar."""
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be ≥ 1")
    model = load_run(run_dir, device=device)
    options = autoregressive_options(model, temperature, method)
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
        per = max(1, num // k)
        labels = torch.arange(k).repeat_interleave(per)
        num, nrow = len(labels), per
    img = generate(model, num, seed=seed, batch_size=batch_size, labels=labels, **options)
    click.echo(save_images(img, out, labels=labels, nrow=nrow))


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


def register(cli: click.Group) -> None:
    cli.add_command(sample)
