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
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def sample(run_dir: Path, num: int, seed: int, out: Path, batch_size: int, device: str,
           class_: Optional[int], class_grid: bool, force: bool) -> None:
    """Draw NUM samples from the model in RUN_DIR (its latest checkpoint, or a checkpoint directory)."""
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be ≥ 1")
    model = load_run(run_dir, device=device)
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
    img = generate(model, num, seed=seed, batch_size=batch_size, labels=labels)
    click.echo(save_images(img, out, labels=labels, nrow=nrow))


def register(cli: click.Group) -> None:
    cli.add_command(sample)
