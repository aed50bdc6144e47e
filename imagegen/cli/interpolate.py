"""``imagegen interpolate RUN`` (tweening GIF or PNG strip) and ``imagegen reconstruct RUN``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import torch

from ..data import build_dataset
from ..errors import ConfigError
from .options import IMAGE_EXTS, check_out
from ..sampling import load_run
from ..sampling.api import run_resize
from ..sampling.interpolate import (latents_for_seeds, load_images, reconstruct as reconstruct_images,
                                    save_gif, save_strip, tween, tween_projections)
from ..sampling.project import load_projected_latent
from ..sampling.images import save_grid



def parse_seeds(text: str, option: str = "--seeds", at_least: int = 2) -> list[int]:
    """Comma-separated integer seeds of ``option``; ConfigError if malformed or fewer than ``at_least``."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give comma-separated integers, e.g. 1,2") from None
    if len(seeds) < at_least:
        plural = "s" if at_least > 1 else ""
        raise ConfigError(f"{option} {text!r}: give at least {at_least} seed{plural}, e.g. 1,2")
    return seeds


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".gif (animation) or .png/.jpg/.webp (one row of frames)")
@click.option("--seeds", default=None,
              help="comma-separated sampling seeds: the keyframes (frame i = `imagegen sample --seed s_i`)  "
                   "[default: 1,2]")
@click.option("--images", type=click.Path(dir_okay=False, path_type=Path), nargs=2, default=None,
              help="two image files to interpolate between through the encoder (vae, cvae, aae)")
@click.option("--projections", default=None,
              help="comma-separated .npz files of `imagegen project` (style-based runs): keyframes that are "
                   "projected real images; w and the noise maps are interpolated linearly, so each keyframe "
                   "is its projection")
@click.option("--steps", type=int, default=16, show_default=True, help="frames per segment, endpoints included")
@click.option("--method", type=click.Choice(["slerp", "lerp"]), default=None,
              help="spherical (for Gaussian latents; White 2016) or linear interpolation  "
                   "[default: slerp in z, lerp in w]")
@click.option("--space", type=click.Choice(["z", "w"]), default=None,
              help="style-based models (stylegan2, stylegan): interpolate the prior latent z, or linearly the mapped "
                   "w (StyleGAN §4.2), decoded with constant noise  [default: z; w with --projections]")
@click.option("--class", "class_", type=int, default=None, help="class label (required for conditional models)")
@click.option("--class-grid", is_flag=True,
              help="conditional models: every class at once with the same latents (GIF frames: one row of "
                   "classes; PNG: one row per class)")
@click.option("--fps", type=float, default=12.0, show_default=True, help="GIF frames per second")
@click.option("--boomerang/--no-boomerang", default=True, show_default=True, help="GIF plays forwards then backwards")
@click.option("--scale", type=int, default=2, show_default=True, help="integer upscaling of the frames")
@click.option("--resize", default=None,
              help="how --images are brought to the model's resolution: auto, pad, or a resampling filter "
                   "(bicubic, bilinear, lanczos, box, nearest)  [default: the run's own --resize]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def interpolate(run_dir: Path, out: Path, seeds: Optional[str], images: Optional[tuple[Path, Path]],
                projections: Optional[str], steps: int, method: Optional[str], space: Optional[str],
                class_: Optional[int], class_grid: bool, fps: float, boomerang: bool, scale: int,
                resize: Optional[str], device: str, force: bool) -> None:
    """Interpolate through the latent space of the model in RUN_DIR: between the latents of --seeds,
    between two real --images (encoder models), or between real images projected into a style-based
    model (--projections, from `imagegen project`)."""
    check_out(out, force, (".gif",) + IMAGE_EXTS)
    if scale < 1 or fps <= 0:
        raise ConfigError("--scale must be ≥ 1 and --fps > 0")
    if sum(x is not None for x in (seeds, images, projections)) > 1:
        raise ConfigError("give the keyframes one way: --seeds, --images or --projections")
    model = load_run(run_dir, device=device)
    if projections is not None:
        frames = _tween_projections(model, projections, steps, method, space, class_, class_grid)
        space, method = "w", "lerp"
    else:
        frames = _tween_latents(model, "1,2" if seeds is None else seeds, images, steps, method, space or "z", class_, class_grid,
                                resize)
        space, method = space or "z", method or ("lerp" if space == "w" else "slerp")
    if out.suffix.lower() == ".gif":
        save_gif(frames, out, fps=fps, boomerang=boomerang, scale=scale)
    else:
        save_strip(frames, out, scale=scale)
    click.echo(f"wrote {len(frames)} frames ({method} in {space}) to {out}")


def _tween_projections(model, projections: str, steps: int, method: Optional[str], space: Optional[str],
                       class_: Optional[int], class_grid: bool) -> torch.Tensor:
    """Frames [T, C, H, W] through the projected images of ``--projections``."""
    if not getattr(model, "has_style_latents", False):
        raise ConfigError(f"--projections needs a style-based run (stylegan2, stylegan); {model.model_name} has "
                          "no mapping network")
    if space == "z" or method == "slerp":
        raise ConfigError("--projections are w latents, interpolated linearly in w; drop --space z / --method slerp")
    if class_ is not None or class_grid:
        raise ConfigError("--projections hold their class in w already; drop --class / --class-grid")
    paths = [p.strip() for p in projections.split(",") if p.strip()]
    if len(paths) < 2:
        raise ConfigError(f"--projections {projections!r}: give at least two .npz files of `imagegen project`, "
                          "e.g. a.npz,b.npz")
    return tween_projections(model, [load_projected_latent(model, p) for p in paths], steps=steps)


def _tween_latents(model, seeds: str, images: Optional[tuple[Path, Path]], steps: int, method: Optional[str],
                   space: str, class_: Optional[int], class_grid: bool, resize: Optional[str]) -> torch.Tensor:
    """Frames [T, C, H, W] (or [T, K, C, H, W] with ``class_grid``) through seeds' or encoded images' latents."""
    if images:
        if not model.has_encoder:
            raise ConfigError(f"--images needs an encoder model (vae, cvae, aae); {model.model_name} has none; "
                              "use --seeds")
        img = load_images(images, model.config.resolution, model.config.channels or 1, resize or run_resize(model))
        labels = None if class_ is None else torch.full((len(img),), class_, dtype=torch.int64)
        if model.num_classes and labels is None:
            raise ConfigError(f"{model.model_name} is class-conditional: give the images' class with --class C")
        keys = model.encode(img, labels)
    else:
        keys = latents_for_seeds(model, parse_seeds(seeds))
    method = method or ("lerp" if space == "w" else "slerp")
    if class_grid:
        if not model.num_classes:
            raise ConfigError(f"{model.model_name} is unconditional; drop --class-grid")
        if class_ is not None and not images:
            raise ConfigError("use either --class or --class-grid")
        return torch.stack([tween(model, keys, steps=steps, labels=c, method=method,  # type: ignore[arg-type]
                                  space=space) for c in range(model.num_classes)], 1)  # [T, K, C, H, W]
    return tween(model, keys, steps=steps, labels=class_, method=method, space=space)  # type: ignore[arg-type]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data", required=True, help="dataset name (mnist, cifar10-jpg, digits, ...) or an image folder")
@click.option("--data-root", default=None, help="directory holding the dataset files")
@click.option("--split", default="test", show_default=True, help="dataset split")
@click.option("--num", type=int, default=32, show_default=True, help="number of images")
@click.option("--seed", type=int, default=0, show_default=True, help="which images: a seeded random subset")
@click.option("--class", "class_", type=int, default=None,
              help="conditional models: decode every image with this class (the encoder sees the true one)")
@click.option("--pairs-per-row", type=int, default=8, show_default=True, help="input/reconstruction pairs per row")
@click.option("--resize", default=None,
              help="how the images are brought to the model's resolution: auto, pad, or a resampling filter "
                   "(bicubic, bilinear, lanczos, box, nearest)  [default: the run's own --resize]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".png/.jpg/.webp grid")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def reconstruct(run_dir: Path, data: str, data_root: Optional[str], split: str, num: int, seed: int,
                class_: Optional[int], pairs_per_row: int, resize: Optional[str], out: Path, device: str, force: bool) -> None:
    """Encode and decode NUM images of a dataset with the autoencoder in RUN_DIR (vae, cvae, aae); the
    grid shows each input beside its reconstruction."""
    check_out(out, force)
    if num < 1 or pairs_per_row < 1:
        raise ConfigError("--num and --pairs-per-row must be ≥ 1")
    model = load_run(run_dir, device=device)
    if not model.has_encoder:
        raise ConfigError(f"{model.model_name} has no encoder; reconstruct needs vae, cvae or aae")
    ds = build_dataset(data, root=data_root, split=split, resolution=model.config.resolution,
                       channels=model.config.channels or 1, resize=resize or run_resize(model))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:num]
    img, label = ds.get_batch(idx)
    labels = decode_labels = None
    if model.num_classes:
        if class_ is not None and not 0 <= class_ < model.num_classes:
            raise ConfigError(f"--class {class_}: the model has classes 0..{model.num_classes - 1}")
        if (label < 0).any():
            if class_ is None:
                raise ConfigError(f"{ds.name} has no labels; give the class with --class C")
            label = torch.full_like(label, class_)
        labels = label
        decode_labels = None if class_ is None else torch.full_like(label, class_)
    elif class_ is not None:
        raise ConfigError(f"{model.model_name} is unconditional; drop --class")
    rec = reconstruct_images(model, img, labels, decode_labels)
    pairs = torch.stack([img, rec], 1).flatten(0, 1)  # [2N, C, H, W]: input, reconstruction, ...
    save_grid(pairs, out, nrow=2 * min(pairs_per_row, num))
    err = float((rec - img).square().mean())
    click.echo(f"wrote {num} input/reconstruction pairs to {out} (mean squared error {err:.4f} in [-1, 1] units)")


def register(cli: click.Group) -> None:
    cli.add_command(interpolate)
    cli.add_command(reconstruct)
