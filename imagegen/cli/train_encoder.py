"""``imagegen train-encoder``: train the offline VGG-19-layout encoder for style transfer
(:mod:`imagegen.style.encoder_training`) and write it in torchvision's layout for ``--encoder PATH``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..errors import ConfigError, ImagegenError
from ..style.encoder_training import NORMALIZE_IMAGES


@click.command("train-encoder", context_settings={"show_default": True})
@click.option("--data", default="cifar10", help="labelled RGB dataset (name, or folder/zip with class sub-folders)")
@click.option("--data-root", default=None, help="directory holding the dataset's files")
@click.option("--resolution", type=int, default=32, help="training image size (at least 32: VGG-19 pools 5 times)")
@click.option("--widths", default="32,64,128,256,256",
              help="conv widths of VGG-19's five blocks (64,128,256,512,512 is the standard network, 4x the cost)")
@click.option("--epochs", type=float, default=3.0, help="passes over the training split")
@click.option("--batch-size", type=int, default=128)
@click.option("--lr", type=float, default=2e-3, help="peak learning rate (Adam, one-cycle)")
@click.option("--seed", type=int, default=0)
@click.option("--threads", type=int, default=None, help="CPU threads (default: all cores)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="weights file to write (.pth; a .pth.json with the training record beside it); default: "
                   "<cache>/weights/vgg19-selftrained.pth, which --encoder auto uses when the ImageNet file is absent")
@click.option("--normalize-filters", is_flag=True,
              help=f"after training, rescale every filter to mean ReLU activation 1 over {NORMALIZE_IMAGES:,} "
                   "training images, compensated in the next layer (Gatys et al. 2016 §2; the official AdaIN "
                   "encoder is the ImageNet VGG-19 normalised so), so that no channel dominates the style losses "
                   "by its scale alone")
@click.option("--force", is_flag=True, help="replace --out if it exists")
def train_encoder(data: str, data_root: Optional[str], resolution: int, widths: str, epochs: float, batch_size: int,
                  lr: float, seed: int, threads: Optional[int], device: str, out: Optional[Path],
                  normalize_filters: bool, force: bool) -> None:
    """Train a VGG-19-layout classifier on a labelled dataset (CIFAR-10 by default) and write its
    convolutional layers (batch norm folded in) as an encoder for `imagegen stylize` and `imagegen train
    adain`, for machines without the ImageNet weights. Written to the cache (the default --out), it is
    what `--encoder auto` uses when the ImageNet file is absent; elsewhere pass `--encoder OUT`.

    \b
    Example (6 minutes on a 2-core CPU: 75.9% CIFAR-10 test accuracy):
      imagegen train-encoder --data cifar10 --data-root DIR
    """
    import torch

    from ..data import build_dataset
    from ..device import resolve_device
    from ..nn.vgg import parse_widths, self_trained_path
    from ..style.encoder_training import normalize_on_dataset, save_vgg_encoder, train_vgg_encoder

    w = parse_widths(widths, 5, what=f"--widths {widths}", example="32,64,128,256,256")
    if resolution < 32:
        raise ConfigError(f"--resolution {resolution}: VGG-19 needs at least 32 pixels")
    out = out or self_trained_path()
    if out.exists() and not force:  # before the training, not after it
        raise ConfigError(f"{out} exists; choose another --out or pass --force to replace it")
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    train = build_dataset(data, root=data_root, split="train", resolution=resolution, channels=3)
    try:
        test = build_dataset(data, root=data_root, split="test", resolution=resolution, channels=3)
    except ImagegenError as e:  # e.g. a folder without a test split: train anyway, report no accuracy
        click.echo(f"no test split ({e}); no accuracy will be reported", err=True)
        test = None
    click.echo(f"training a VGG-19-layout encoder, widths {w}, on {len(train):,} {data} images at "
               f"{resolution}x{resolution} for {epochs:g} epochs on {dev}", err=True)
    encoder, info = train_vgg_encoder(train, test, widths=w, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                      device=dev, log=lambda m: click.echo(m, err=True))
    info["resolution"] = resolution
    if normalize_filters:  # over training images at the training resolution
        info["normalized_filters"] = {**normalize_on_dataset(encoder, train, seed=seed), "split": "train",
                                      "resolution": resolution}
    path = save_vgg_encoder(encoder, out, info, force=force)
    acc = info["test_accuracy"]
    click.echo(f"{path}: widths {tuple(info['widths'])}, {info['steps']} steps in {info['seconds']:.0f} s"
               + (f", test accuracy {100 * acc:.2f}%" if acc is not None else "")
               + ("; --encoder auto uses it (when the ImageNet file is absent)" if path == self_trained_path()
                  else f"; use with --encoder {path}"))


def register(cli: click.Group) -> None:
    cli.add_command(train_encoder)
