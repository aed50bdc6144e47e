"""``imagegen stylize``: neural style transfer of a photo (Gatys et al. 2016, or a trained AdaIN network,
Huang & Belongie 2017)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click
import torch

from ..data.base import uint8_to_float
from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..nn.vgg import load_vgg19
from ..sampling.images import save_png_atomic, to_uint8_nhwc
from ..style.gatys import (DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, INITS, OPTIMIZERS, PRESERVE_COLORS,
                           GatysProgress, stylize_gatys)
from ..weights import VGG19
from .options import check_out, explicit_params

# options of the optimisation method that a trained AdaIN network has no use for (its run fixes the encoder)
GATYS_ONLY = ("steps", "optimizer", "lr", "content_weight", "style_loss_weight", "tv_weight", "init", "scales",
              "style_scale", "encoder", "pooling", "normalize_features", "content_layer", "style_layers", "seed")


def load_image(path: Path, what: str) -> torch.Tensor:
    """Read an image file as RGB float32 [1, 3, H, W] in [-1, 1]; a note on stderr when it is not RGB
    (greyscale, CMYK, palette, with alpha: converted, transparency composited onto white).

    Raises:
        DataError: missing, unreadable or corrupt file (one line naming ``what`` and the path).
    """
    from PIL import Image

    from ..data.folder import decode_image

    if not path.is_file():
        raise DataError(f"{what} {path}: no such file")
    try:
        with Image.open(path) as img:
            mode, info = img.mode, dict(img.info)
        arr = decode_image(path, channels=3)  # [H, W, 3] uint8
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for corrupt files
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise DataError(f"{what} {path}: cannot read the image ({msg})") from None
    if mode != "RGB":
        kind = {"L": "greyscale", "1": "black-and-white", "P": "a palette image", "CMYK": "CMYK"}.get(mode, "")
        click.echo(f"note: {what} {path} is {kind + ' (mode ' if kind else 'in mode '}{mode}{')' if kind else ''}; "
                   f"converted to RGB"
                   f"{' (transparency composited onto white)' if 'A' in mode or 'transparency' in info else ''}",
                   err=True)
    return uint8_to_float(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0))


def parse_floats(text: Optional[str], option: str) -> Optional[list[float]]:
    """``"0.7,0.3"`` → [0.7, 0.3]; None stays None; ConfigError for anything else."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give comma-separated numbers, e.g. 0.7,0.3") from None


def parse_steps(text: str) -> list[int] | int:
    """``"300"`` → 300 (every scale); ``"200,100"`` → one per scale, coarse to fine."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--steps {text!r}: give a whole number, or one per scale (e.g. 200,100)") from None
    return values[0] if len(values) == 1 else values


@click.command()
@click.argument("run", required=False)
@click.option("--method", type=click.Choice(["gatys", "adain"]), default="gatys", show_default=True,
              help="gatys: optimise the pixels (Gatys et al. 2016); adain: the trained feed-forward network "
                   "of the RUN directory (imagegen train adain; Huang & Belongie 2017)")
@click.option("--content", type=click.Path(path_type=Path), required=True, help="the photo to stylise")
@click.option("--style", "styles", type=click.Path(path_type=Path), multiple=True, required=True,
              help="a style image (painting); repeat for several styles")
@click.option("--style-weights", default=None,
              help="mixing weights of several --style images, comma-separated (normalised to sum 1) "
                   "[default: equal]")
@click.option("--alpha", type=float, default=None,
              help="adain: content-style trade-off in [0, 1] (0 = the photo's features, 1 = full style) "
                   "[default: 1]")
@click.option("--mask", "masks", type=click.Path(path_type=Path), multiple=True,
              help="adain: a mask image of the content's size per --style (white = that style's region; "
                   "binarised at 50%); with two styles one mask may be given (style 2 gets the rest)")
@click.option("--size", type=int, default=512, show_default=True,
              help="long side of the output in pixels (the content's aspect ratio is kept)")
@click.option("--steps", default="300", show_default=True,
              help="iterations per scale (one network forward+backward each), or one number per scale, "
                   "coarse to fine (e.g. 200,100)")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="lbfgs", show_default=True)
@click.option("--lr", type=float, default=None, help="step size [default: 1 for lbfgs, 0.02 for adam]")
@click.option("--content-weight", type=float, default=1.0, show_default=True, help="α, content loss weight")
@click.option("--style-loss-weight", type=float, default=10.0, show_default=True, help="β, style loss weight")
@click.option("--tv-weight", type=float, default=0.0, show_default=True, help="γ, total variation weight")
@click.option("--init", type=click.Choice(INITS), default="content", show_default=True,
              help="starting image: the content photo, white noise, or the (first) style image")
@click.option("--scales", type=int, default=1, show_default=True,
              help="coarse-to-fine scales, each half the next one's size (1 = the output size only)")
@click.option("--style-scale", type=float, default=1.0, show_default=True,
              help="style images are resized to this times the output's long side")
@click.option("--preserve-color", type=click.Choice(PRESERVE_COLORS), default="none", show_default=True,
              help="keep the photo's colours: luminance-only transfer, or match the style's colour histogram "
                   "(mean and covariance) to the photo first (Gatys et al. 2017)")
@click.option("--encoder", default="auto", show_default=True,
              help="VGG-19 weights: imagenet (vgg19-dcbb9e9d.pth from $IMAGEGEN_VGG19_WEIGHTS or the cache, "
                   "downloaded if missing), random (offline, Kaiming-normal), auto (imagenet if the file is "
                   "found locally, else the self-trained encoder of imagegen train-encoder in the cache, else "
                   "random), or the path of a torchvision-layout file (such as one written by "
                   "imagegen train-encoder)")
@click.option("--pooling", type=click.Choice(["avg", "max"]), default="avg", show_default=True,
              help="VGG pooling (Gatys et al. 2016 use average pooling)")
@click.option("--normalize-features/--raw-features", default=True, show_default=True,
              help="divide each layer's activations by their mean over the content and style images, so that "
                   "the weights mean the same for every encoder")
@click.option("--content-layer", default=DEFAULT_CONTENT_LAYER, show_default=True)
@click.option("--style-layers", default=",".join(DEFAULT_STYLE_LAYERS), show_default=True,
              help="comma-separated VGG-19 layers of the style loss")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the noise initialisation")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="output image (.png, .jpg, .webp)")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.pass_context
def stylize(ctx: click.Context, run: Optional[str], method: str, content: Path, styles: tuple[Path, ...],
            style_weights: Optional[str], alpha: Optional[float], masks: tuple[Path, ...], size: int, steps: str,
            optimizer: str, lr: Optional[float], content_weight: float, style_loss_weight: float, tv_weight: float,
            init: str, scales: int, style_scale: float,
            preserve_color: str, encoder: str, pooling: str, normalize_features: bool, content_layer: str,
            style_layers: str, seed: int, device: str, out: Path, force: bool, no_progress: bool) -> None:
    """Paint the --content photo in the style of the --style image(s).

    \b
    --method gatys optimises the output's pixels for a VGG-19 content loss and Gram-matrix style losses
    (Gatys et al. 2016); it needs no training, and takes one network forward+backward per iteration.

    \b
    --method adain RUN runs the decoder trained by `imagegen train adain` (one forward pass; the
    gatys-only options --steps, --optimizer, --lr, the loss weights, --init, --scales, --style-scale,
    --pooling, --encoder, the feature and layer options and --seed are refused: the run's config names
    its encoder).

    \b
    Examples:
      imagegen stylize --content photo.jpg --style painting.jpg --size 512 --out out.png
      imagegen stylize --method adain runs/adain --content photo.jpg --style a.jpg --style b.jpg \\
          --style-weights 0.5,0.5 --alpha 0.8 --size 512 --out out.png
      imagegen stylize --content photo.jpg --style a.jpg --style b.jpg --style-weights 0.7,0.3 \\
          --scales 2 --steps 200,100 --preserve-color luminance --out mix.png
    """
    if method == "gatys":
        if run is not None:
            raise ConfigError(f"unexpected argument {run!r}: --method gatys takes no run directory")
        if alpha is not None or masks:
            raise ConfigError("--alpha and --mask are AdaIN controls; use them with --method adain RUN")
    else:
        if run is None:
            raise ConfigError("--method adain needs the run directory of a trained adain model: imagegen stylize "
                              "--method adain RUN --content ... (train one with imagegen train adain)")
        given = [n for n in GATYS_ONLY if n in explicit_params(ctx)]
        if given:
            flag = {"normalize_features": "--normalize-features/--raw-features"}.get(
                given[0], "--" + given[0].replace("_", "-"))
            raise ConfigError(f"{flag} is an option of --method gatys; drop it (an adain run's config fixes "
                              "its encoder and layers)")
    check_out(out, force)
    if size < 1:
        raise ConfigError(f"--size {size}: must be ≥ 1 pixel")
    mix = parse_floats(style_weights, "--style-weights")
    if mix is not None and len(mix) != len(styles):
        raise ConfigError(f"--style-weights {style_weights}: {len(mix)} values for {len(styles)} --style image(s)")
    if method == "adain":
        return _stylize_adain(run, content, styles, mix, alpha, masks, size, preserve_color, device, out)
    n_steps = parse_steps(steps)
    layers = tuple(v.strip() for v in style_layers.split(",") if v.strip())

    content_img = load_image(content, "--content")
    style_imgs = [load_image(p, "--style") for p in styles]
    enc = load_vgg19(encoder, download=encoder == "imagenet")  # its errors name the file's checksum
    note = f"encoder: VGG-19, {enc.source}"
    if enc.weights_path is None and encoder == "auto":
        note += (f" (no {VGG19.filename} found locally, nor a self-trained encoder: --encoder imagenet downloads "
                 "the former, imagegen train-encoder makes the latter in 6 CPU minutes, with cleaner results)")
    elif encoder == "auto" and not enc.source.startswith("imagenet"):
        note += f" (the self-trained encoder of imagegen train-encoder; no {VGG19.filename} found locally)"
    dev = resolve_device(device)
    total = n_steps * max(1, scales) if isinstance(n_steps, int) else sum(n_steps)
    from tqdm.auto import tqdm

    bar = None  # started with the first iteration, so that option errors stay one line

    def report(p: GatysProgress) -> None:
        nonlocal bar
        if bar is None:
            click.echo(note, err=True)
            bar = tqdm(total=total, desc="gatys", unit="it", disable=no_progress, dynamic_ncols=True,
                       mininterval=0.5)
        bar.update(1)
        bar.set_postfix_str(f"scale {p.scale + 1}/{p.num_scales} {p.width}x{p.height} loss {p.loss:.4g}",
                            refresh=False)

    t0 = time.perf_counter()
    try:
        img = stylize_gatys(content_img.to(dev), [s.to(dev) for s in style_imgs], style_weights=mix,
                            content_layer=content_layer, style_layers=layers, content_weight=content_weight,
                            style_weight=style_loss_weight, tv_weight=tv_weight, init=init, optimizer=optimizer,
                            steps=n_steps, lr=lr, size=size, scales=scales, style_scale=style_scale,
                            preserve_color=preserve_color, encoder=enc, pooling=pooling,
                            normalize_features=normalize_features, seed=seed, progress=report)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    save_png_atomic(to_uint8_nhwc(img)[0], out)
    click.echo(f"wrote a {img.shape[-1]}x{img.shape[-2]} (width x height) image to {out} "
               f"({total} iterations, {seconds:.1f} s)")


def load_masks(paths: tuple[Path, ...], k: int, hw: tuple[int, int]) -> torch.Tensor:
    """--mask files → [K, H, W] one-hot masks (greyscale, binarised at 50%); one file with two styles: the
    second style gets the complement. ConfigError/DataError with one line for bad masks."""
    if len(paths) == 1 and k == 2:
        one = True
    elif len(paths) == k:
        one = False
    else:
        raise ConfigError(f"--mask: {len(paths)} mask(s) for {k} --style image(s); give one per style "
                          "(or one for two styles)")
    ms = []
    for p in paths:
        img = load_image(p, "--mask")  # [1, 3, H, W] in [-1, 1]
        if tuple(img.shape[-2:]) != hw:
            raise ConfigError(f"--mask {p}: {img.shape[-1]}x{img.shape[-2]} (width x height) but --content is "
                              f"{hw[1]}x{hw[0]}; give a mask of the content's size")
        ms.append((img.mean(1)[0] > 0).float())
    if one:
        ms.append(1 - ms[0])
    mask = torch.stack(ms)
    if not torch.all(mask.sum(0) == 1):
        raise ConfigError("--mask: the masks overlap or leave pixels uncovered; every pixel must be white in "
                          "exactly one mask")
    return mask


def _stylize_adain(run: str, content: Path, styles: tuple[Path, ...], mix: Optional[list[float]],
                   alpha: Optional[float], masks: tuple[Path, ...], size: int, preserve_color: str, device: str,
                   out: Path) -> None:
    from ..models.adain import load_adain
    from ..style.adain import stylize_adain

    alpha = 1.0 if alpha is None else alpha
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha {alpha}: use a value in [0, 1] (0 = content only, 1 = full style)")
    if size < 8:
        raise ConfigError(f"--size {size}: adain needs at least 8 pixels")
    if masks and mix is not None:
        raise ConfigError("--mask and --style-weights: give one of them (a mask assigns one style per region)")
    if not Path(run).exists():
        raise ConfigError(f"{run}: no such run directory or checkpoint")
    content_img = load_image(content, "--content")
    style_imgs = [load_image(p, "--style") for p in styles]
    mask = load_masks(masks, len(styles), tuple(content_img.shape[-2:])) if masks else None
    model = load_adain(run).to(resolve_device(device))
    click.echo(f"encoder: VGG-19, {model.encoder.source}", err=True)
    t0 = time.perf_counter()
    img = stylize_adain(model, content_img, style_imgs, alpha=alpha, style_weights=mix,
                        preserve_color=None if preserve_color == "none" else preserve_color, mask=mask, size=size)
    seconds = time.perf_counter() - t0
    save_png_atomic(to_uint8_nhwc(img)[0], out)
    click.echo(f"wrote a {img.shape[-1]}x{img.shape[-2]} (width x height) image to {out} "
               f"(adain, α {alpha:g}, {seconds:.2f} s)")


def register(cli: click.Group) -> None:
    cli.add_command(stylize)
