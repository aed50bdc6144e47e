"""``imagegen style-mix RUN``: the style-mixing figure of StyleGAN (Karras et al. 2019, §3.1, Fig. 3)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..errors import ConfigError
from ..sampling import load_run, save_grid
from ..sampling.project import load_projected_latent
from ..sampling.style_mix import Key, parse_layers, style_mix_grid
from .options import check_out
from .sample import style_options


@click.command("style-mix")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--rows", required=True,
              help="comma-separated seeds of the row images (first column), whose other layers are kept; an "
                   "item may be the .npz of `imagegen project` (a projected real image)")
@click.option("--cols", required=True,
              help="comma-separated seeds of the column images (first row), whose --layers are copied in; an "
                   "item may be the .npz of `imagegen project`")
@click.option("--layers", required=True,
              help="style layers taken from the column image (0 = coarsest 4×4): a range 0-3, an open range "
                   "8- (to the last layer), or a comma list 0,1,5")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".png/.jpg/.webp grid of (rows + 1) × (cols + 1) cells")
@click.option("--truncation-psi", type=float, default=None,
              help="pull the seeds' w toward its average, w_avg + psi (w - w_avg); 1 = off (projections are "
                   "used as they are)  [default: 1]")
@click.option("--truncation-cutoff", type=int, default=None,
              help="truncate only the first N layers' w (coarse styles)  [default: all]")
@click.option("--allow-extrapolation", is_flag=True, help="accept --truncation-psi > 1 (exaggerates styles)")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="per-pixel noise of the seeds' cells: a fixed map per layer (cells then differ only by their "
                   "styles), drawn with seed 0, or off (a projection's row and column use its own noise maps)")
@click.option("--class", "class_", type=int, default=None,
              help="class label of every seed's image (required for conditional models)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def style_mix(run_dir: Path, rows: str, cols: str, layers: str, out: Path, truncation_psi: Optional[float],
              truncation_cutoff: Optional[int], allow_extrapolation: bool, noise_mode: str,
              class_: Optional[int], device: str, force: bool) -> None:
    """Style-mixing grid of the style-based model in RUN_DIR (stylegan2, stylegan): the first row shows the
    --cols images, the first column the --rows images, and cell (i, j) is row image i with the
    --layers styles of column image j (seeds as in `imagegen sample --seed`).

    \b
    Example (coarse styles: pose and shape from the columns; a projected photo as the last row):
      imagegen style-mix runs/sg2 --rows 1,2,3 --cols 4,5,6 --layers 0-3 --out mix.png
      imagegen style-mix runs/sg2 --rows 1,photo.npz --cols 4,5 --layers 0-3 --out mix.png
    """
    check_out(out, force)
    row_items, col_items = _split_keys(rows, "--rows"), _split_keys(cols, "--cols")  # before the run is loaded
    model = load_run(run_dir, device=device)
    if not getattr(model, "has_style_latents", False):
        raise ConfigError(f"{model.model_name} has no mapping network; style-mix needs a style-based model "
                          "(train one with `imagegen train stylegan2`)")
    layer_ids = parse_layers(layers, model.num_ws)
    row_seeds, col_seeds = parse_keys(row_items, model), parse_keys(col_items, model)
    options = style_options(model, truncation_psi, truncation_cutoff, noise_mode, allow_extrapolation)
    k = model.num_classes
    seeded = any(isinstance(key, int) for key in row_seeds + col_seeds)
    if class_ is not None and not k:
        raise ConfigError(f"{model.model_name} is unconditional; drop --class")
    if class_ is not None and not seeded:
        raise ConfigError("--class applies to seeds; every row and column is a projection, whose w holds its "
                          "class: drop --class")
    if class_ is None and k and seeded:
        raise ConfigError(f"{model.model_name} is class-conditional: give the seeds' class with --class C "
                          f"(0..{k - 1})")
    if class_ is not None and not 0 <= class_ < k:
        raise ConfigError(f"--class {class_}: the model has classes 0..{k - 1}")
    img, nrow = style_mix_grid(model, row_seeds, col_seeds, layer_ids, labels=class_, **options)
    save_grid(img, out, nrow=nrow)
    click.echo(f"wrote a {len(row_seeds) + 1} × {nrow} style-mixing grid (layers "
               f"{','.join(map(str, layer_ids))} of {model.num_ws} from the columns) to {out}")


def _split_keys(text: str, option: str) -> list[str]:
    """The non-empty comma-separated items of ``text``, each a seed (an int) or a ``.npz`` path."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    for s in items:
        if not s.lower().endswith(".npz"):
            try:
                int(s)
            except ValueError:
                items = []
                break
    if not items:
        raise ConfigError(f"{option} {text!r}: give comma-separated seeds or .npz files of `imagegen project`, "
                          "e.g. 1,2,photo.npz")
    return items


def parse_keys(items: list[str], model) -> list[Key]:
    """The rows or columns of ``--rows``/``--cols`` (items of :func:`_split_keys`): each a sampling seed
    (int) or the ``.npz`` of a projected real image (:func:`~imagegen.sampling.project.load_projected_latent`).

    Raises:
        DataError: a missing or unreadable ``.npz``, or one projected with another model.
    """
    return [load_projected_latent(model, s) if s.lower().endswith(".npz") else int(s) for s in items]


def register(cli: click.Group) -> None:
    cli.add_command(style_mix)
