"""``imagegen blend --a A.png --b B.png --mask M.png --method laplacian|poisson|latent --out out.png``:
image fusion (Burt & Adelson 1983; Pérez et al. 2003; or through a trained model's latent space)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click

from ..errors import ConfigError
from ..sampling.blend import (METHODS, POISSON_MODES, RESIZE_FILTERS, default_levels, feather_mask,
                              laplacian_blend, latent_blend, load_blend_inputs, poisson_blend, save_image)
from ..sampling.project import FEATURES
from .options import check_out

_LATENT_ONLY = ("run_dir", "alpha", "layers", "decode_levels", "class_", "steps", "space", "features", "seed")


@click.command()
@click.option("--a", "a_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="image A: the one the mask selects (white)")
@click.option("--b", "b_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="image B: the background (black in the mask)")
@click.option("--mask", "mask_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="grayscale mask of A's size: white (255) = take A, black (0) = keep B, grey = a mix")
@click.option("--method", type=click.Choice(METHODS), default="laplacian", show_default=True,
              help="laplacian: multiresolution spline (Burt & Adelson 1983); poisson: gradient-domain "
                   "seamless cloning (Pérez et al. 2003, OpenCV); latent: through the model of --run")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="output image (.png, .jpg, .webp); latent: at the model's resolution")
@click.option("--resize", type=click.Choice(RESIZE_FILTERS), default="none", show_default=True,
              help="a B or mask of another size than A: refuse (none) or stretch it to A's size with this filter")
@click.option("--feather", type=float, default=None,
              help="Gaussian blur σ of the mask in pixels  [default: 0; latent: 1/16 of the model's resolution]")
@click.option("--levels", type=int, default=None,
              help="laplacian: pyramid levels  [default: until the top is about 4 pixels]")
@click.option("--poisson-mode", type=click.Choice(POISSON_MODES), default="normal", show_default=True,
              help="poisson: A's gradients (normal) or the stronger of A's and B's (mixed, Pérez et al. Eq. 13)")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None,
              help="latent: a run that encodes (vae, cvae, aae) or projects (stylegan2, stylegan)")
@click.option("--alpha", type=float, default=1.0, show_default=True,
              help="latent: how far toward A's latent the mask's white goes (1 = A, 0.5 = half-way)")
@click.option("--layers", default=None,
              help="latent, style-based runs: the w layers that move toward A, e.g. 0-3 (others keep B's) "
                   "[default: all]")
@click.option("--decode-levels", type=int, default=9, show_default=True,
              help="latent: images decoded along the path from B's latent to the mix")
@click.option("--class", "class_", type=int, default=None, help="latent, cvae: the images' class")
@click.option("--steps", type=int, default=1000, show_default=True, help="latent, style-based runs: projection steps")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w+", show_default=True,
              help="latent, style-based runs: project into W or W+")
@click.option("--features", type=click.Choice(FEATURES), default="auto", show_default=True,
              help="latent, style-based runs: projection distance (see imagegen project --help)")
@click.option("--seed", type=int, default=0, show_default=True, help="latent, style-based runs: projection seed")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.pass_context
def blend(ctx: click.Context, a_path: Path, b_path: Path, mask_path: Path, method: str, out: Path, resize: str,
          feather: Optional[float], levels: Optional[int], poisson_mode: str, run_dir: Optional[Path], alpha: float,
          layers: Optional[str], decode_levels: int, class_: Optional[int], steps: int, space: str, features: str,
          seed: int, device: str, force: bool, no_progress: bool) -> None:
    """Blend image --a into image --b where --mask is white.

    \b
    laplacian  Laplacian-pyramid blending: each frequency band is joined over a zone of its own scale.
    poisson    A's gradients inside the mask, B's colours on its border: A's colour adapts to B.
    latent     both images are encoded (vae, cvae, aae) or projected (stylegan2, stylegan) into the
               model of --run; the output is decoded from latents between B's and A's, chosen per pixel
               by the (feathered) mask, at the model's resolution (see docs/blending.md).

    \b
    Examples:
      imagegen blend --a apple.png --b orange.png --mask half.png --method laplacian --out orapple.png
      imagegen blend --a face.png --b scene.png --mask m.png --method poisson --out clone.png
      imagegen blend --a a.png --b b.png --mask m.png --method latent --run runs/mnist-vae --out l.png
    """
    check_out(out, force)
    src = ctx.get_parameter_source
    given = [n for n in _LATENT_ONLY if src(n) not in (click.core.ParameterSource.DEFAULT, None)]
    if method != "latent" and given:
        flag = "--" + given[0].rstrip("_").replace("_", "-")
        raise ConfigError(f"{flag} is for --method latent; drop it or use --method latent")
    if method != "laplacian" and levels is not None:
        raise ConfigError("--levels is for --method laplacian; drop it")
    if method != "poisson" and src("poisson_mode") not in (click.core.ParameterSource.DEFAULT, None):
        raise ConfigError("--poisson-mode is for --method poisson; drop it")
    if method == "poisson" and feather:
        raise ConfigError("--feather does not apply to --method poisson (the mask is binarised); drop it")
    if method == "latent" and run_dir is None:
        raise ConfigError("--method latent needs --run RUN_DIR (a vae, cvae, aae, stylegan2 or stylegan run)")
    if method == "latent" and steps < 1:
        raise ConfigError(f"--steps {steps}: must be ≥ 1")
    a, b, mask = load_blend_inputs(a_path, b_path, mask_path, resize)  # [C, H, W], [C, H, W], [H, W]
    C, H, W = a.shape
    t0 = time.perf_counter()
    if method == "laplacian":
        n = levels if levels is not None else default_levels(H, W)
        img = laplacian_blend(a, b, feather_mask(mask, feather or 0.0), levels=n)
        detail = f"laplacian, {n} levels"
    elif method == "poisson":
        img = poisson_blend(a, b, mask, mode=poisson_mode)  # type: ignore[arg-type]
        detail = f"poisson, {poisson_mode} cloning"
    else:
        from ..sampling import load_run
        from ..sampling.blend import check_latent_model
        from ..sampling.style_mix import parse_layers

        model = load_run(run_dir, device=device)  # type: ignore[arg-type]
        kind = check_latent_model(model)
        layer_ids = None
        if layers is not None:
            if kind != "projection":
                raise ConfigError(f"--layers needs a style-based run (stylegan2, stylegan); {model.model_name} "
                                  "has one latent per image; drop --layers")
            layer_ids = parse_layers(layers, model.num_ws)
        R = model.config.resolution
        sigma = feather if feather is not None else R / 16
        bar = None
        progress = None
        if kind == "projection":
            from tqdm.auto import tqdm

            bar = tqdm(total=2 * steps, desc="project A, B", unit="step", disable=no_progress, dynamic_ncols=True,
                       mininterval=0.5)
            progress = lambda name, p: bar.update(1)  # noqa: E731
        try:
            res = latent_blend(model, a, b, mask, alpha=alpha, layers=layer_ids, feather=sigma,
                               decode_levels=decode_levels, labels=class_, steps=steps, space=space,
                               features=features, seed=seed, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        img = res.image
        detail = f"latent via {res.latent} of {run_dir}, alpha {alpha:g}, feather {sigma:g} px"
        if (H, W) != (R, R):
            detail += f"; inputs brought from {W}x{H} to the model's {R}x{R}"
    save_image(img, out)
    click.echo(f"wrote {out} ({img.shape[2]}x{img.shape[1]}, {detail}, {time.perf_counter() - t0:.1f} s)")


def register(cli: click.Group) -> None:
    cli.add_command(blend)
