"""``imagegen complete RUN``: keep the top of an image and let an autoregressive model draw the rest."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import torch

from ..errors import ConfigError
from ..sampling import load_run, save_grid
from ..sampling.completion import KEEP_HELP, completion_grid, input_files, known_mask, read_exact
from .options import check_out
from .sample import autoregressive_options


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--input", "inputs", multiple=True, required=True,
              help="image file or folder of images at the model's size and channels (repeatable)")
@click.option("--keep", default="top-half", show_default=True, help=KEEP_HELP)
@click.option("--num", type=int, default=8, show_default=True, help="completions per input image")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".png grid: per input a row of [occluded input, completions, original]")
@click.option("--seed", type=int, default=0, show_default=True, help="sampling seed")
@click.option("--class", "class_", type=int, default=None, help="class label (conditional models)")
@click.option("--temperature", type=float, default=None, help="divides the logits (1 = the model's distribution)")
@click.option("--method", type=click.Choice(["auto", "fast", "naive"]), default=None,
              help="fast (incremental cache) or naive sampling  [default: auto]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def complete(run_dir: Path, inputs: tuple[str, ...], keep: str, num: int, out: Path, seed: int,
             class_: Optional[int], temperature: Optional[float], method: Optional[str], device: str,
             force: bool) -> None:
    """Complete images with the autoregressive model in RUN_DIR: the --keep pixels of each input stay
    as they are and the rest is sampled from p(rest | kept) (van den Oord et al. 2016a, Figure 1).

    \b
    Example:
      imagegen complete runs/mnist-pixelcnn --input digit.png --keep top-half --num 8 --out completions.png
    """
    check_out(out, force)
    if num < 1:
        raise ConfigError(f"--num {num}: must be ≥ 1")
    model = load_run(run_dir, device=device)
    if not hasattr(model, "complete"):
        raise ConfigError(f"{model.model_name} is not autoregressive; completion needs pixelcnn or pixelrnn")
    options = autoregressive_options(model, temperature, method)
    cfg = model.config
    known = known_mask(keep, cfg.resolution)
    img = read_exact(input_files(inputs), cfg.resolution, cfg.channels or 1)  # [N, C, R, R]
    labels = None
    if model.num_classes:
        if class_ is None or not 0 <= class_ < model.num_classes:
            raise ConfigError(f"{model.model_name} is class-conditional: give --class in 0..{model.num_classes - 1}")
        labels = torch.full((len(img) * num,), class_, dtype=torch.int64)
    elif class_ is not None:
        raise ConfigError(f"{model.model_name} is unconditional; drop --class")
    gen = torch.Generator(device=model.device).manual_seed(seed)
    done = model.complete(img.repeat_interleave(num, 0), known, labels, gen, **options).cpu()
    save_grid(completion_grid(img, known, done), out, nrow=num + 2)
    click.echo(f"wrote {len(img)} × {num} completions (kept: {keep}) to {out}")


def register(cli: click.Group) -> None:
    cli.add_command(complete)
