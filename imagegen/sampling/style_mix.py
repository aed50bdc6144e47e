"""Style mixing: the figure of Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks" (CVPR; arXiv:1812.04948), §3.1 and Fig. 3.

Each row seed and each column seed gives a latent z (as ``imagegen sample --seed s`` draws it), mapped
to ws [num_ws, w_dim]. Cell (i, j) of the grid is the synthesis of row i's ws with column j's ws copied
in at the chosen layers. Layer 0 drives the 4×4 convolution and layers 2k − 1, 2k the two convolutions
at 4·2^k pixels (:class:`~imagegen.models.stylegan2.SynthesisNetwork`): copying the coarse layers (low
indices, up to 8×8) takes pose and shape from the column image, the middle layers (16²–32²) smaller
features, the fine layers (64² and up) mostly colour and texture. The first row shows the column
images, the first column the row images, and the top-left cell is black.

Python API::

    from imagegen.sampling import load_run, save_grid
    from imagegen.sampling.style_mix import parse_layers, style_mix_grid
    model = load_run("runs/digits-stylegan2")
    img, nrow = style_mix_grid(model, [1, 2, 3], [4, 5, 6], parse_layers("0-3", model.num_ws))
    save_grid(img, "mix.png", nrow=nrow)  # 4 × 4 cells
"""
from __future__ import annotations

import re
from typing import Optional, Sequence, Union

import torch

from ..errors import ConfigError
from .interpolate import _labels_for, latents_for_seeds
from .project import ProjectedLatent, noise_loaded

_LAYER_ITEM = re.compile(r"(\d+)(-(\d*))?")


def parse_layers(spec: str, num_ws: int) -> list[int]:
    """The style layers named by a ``--layers`` value.

    Accepted forms: a range ``0-3`` (both ends included), an open range ``8-`` (to the last layer),
    a single index ``5``, or a comma list of these (``0,1,5`` or ``0-1,6-``).

    Args:
        spec: the option's text.
        num_ws: the model's number of per-layer w inputs (valid indices 0..num_ws-1).

    Returns:
        The layer indices, sorted and without repeats (at least one).

    Raises:
        ConfigError: an empty or malformed spec, a reversed range, or an index beyond the synthesis
            depth (the message gives the valid range 0..num_ws-1).
    """
    hint = "give a range like 0-3, an open range like 4- (to the last layer) or a comma list like 0,1,5"
    items = [s.strip() for s in spec.split(",")]
    if not spec.strip() or any(not s for s in items):
        raise ConfigError(f"--layers {spec!r}: {hint}")
    layers: set[int] = set()
    for item in items:
        m = _LAYER_ITEM.fullmatch(item)
        if m is None:
            raise ConfigError(f"--layers {spec!r}: {hint}")
        start = int(m.group(1))
        stop = start if m.group(2) is None else (num_ws - 1 if not m.group(3) else int(m.group(3)))
        if max(start, stop) > num_ws - 1:
            raise ConfigError(f"--layers {spec!r}: the model has {num_ws} style layers; use indices "
                              f"0..{num_ws - 1}")
        if stop < start:
            raise ConfigError(f"--layers {spec!r}: the range {item} is reversed; write it low-high, e.g. "
                              f"{stop}-{start}")
        layers.update(range(start, stop + 1))
    return sorted(layers)


Key = Union[int, ProjectedLatent]


@torch.no_grad()
def style_mix_grid(model, row_seeds: Sequence[Key], col_seeds: Sequence[Key], layers: Sequence[int],
                   truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
                   noise_mode: str = "const", labels: Optional[int | torch.Tensor] = None,
                   batch_size: int = 64) -> tuple[torch.Tensor, int]:
    """The style-mixing grid of StyleGAN §3.1, Fig. 3.

    z of seed s is ``model.sample_latents(1, torch.Generator(device=model.device).manual_seed(s))``
    (so a row or column image equals the first image of ``imagegen sample RUN --seed s`` with the same
    truncation and noise). Seeds' ws come from ``model.mapping`` (``G_ema``); a row or column may
    instead be a projected real image (:class:`~imagegen.sampling.project.ProjectedLatent`, from
    ``imagegen project``), whose ws are used as they are (no truncation). Cell (i, j) synthesises
    ``ws_row[i]`` with ``ws_row[i][layers] = ws_col[j][layers]``; a projected row image and its cells
    are drawn with that projection's noise maps (the row image keeps its fine detail and equals the
    projection), a projected column image with its own.

    Args:
        model: a model with a mapping network (``has_style_latents``: stylegan2).
        row_seeds: R ≥ 1 seeds or projections of the row images (the images whose other layers are kept).
        col_seeds: C ≥ 1 seeds or projections of the column images (whose ``layers`` are copied in).
        layers: style-layer indices in 0..num_ws-1 to copy from the column image (0 = coarsest);
            see :func:`parse_layers`.
        truncation_psi: truncation toward ``w_avg`` of the seeds' ws (1 = off; StyleGAN Appendix B).
        truncation_cutoff: truncate only the first N layers (None = all).
        noise_mode: for seeds: ``const`` (a fixed noise map per layer, the default, so cells differ only
            by their styles), ``random`` (drawn from a generator seeded with 0 over the seeds' cells in
            grid order, so with projections in the grid the seeds' cells draw other noise than in a grid
            of seeds alone) or ``none``.
        labels: conditional models: an int class for every seed, or int64 [R + C] (the rows' classes,
            then the columns'; entries at projections are ignored: their ws already hold the class).
            Not checked when every row and column is a projection.
        batch_size: images per synthesis pass (memory only).

    Returns:
        ``(img, nrow)``: img float32 [(R + 1)·(C + 1), C_img, H, W] in [-1, 1] on the CPU, row-major
        with ``nrow = C + 1`` images per row: index 0 is the black corner, 1..C the column images, and
        row i + 1 holds row image i followed by its C mixed cells.

    Raises:
        ConfigError: the model has no mapping network, no row or column seeds, empty or out-of-range
            ``layers``, missing/extra/out-of-range labels.
    """
    name = getattr(model, "model_name", type(model).__name__)
    if not getattr(model, "has_style_latents", False):
        raise ConfigError(f"{name} has no mapping network; style-mix needs a style-based model (stylegan2, stylegan)")
    n_rows, n_cols, num_ws = len(row_seeds), len(col_seeds), model.num_ws
    if not n_rows or not n_cols:
        raise ConfigError("style mixing needs at least one row seed and one column seed (e.g. --rows 1,2 --cols 3,4)")
    layers = sorted(set(int(i) for i in layers))
    if not layers:
        raise ConfigError(f"no style layers to mix; give --layers within 0..{num_ws - 1}")
    if layers[0] < 0 or layers[-1] >= num_ws:
        raise ConfigError(f"style layers {layers}: the model has {num_ws} style layers; use indices 0..{num_ws - 1}")
    keys = [*row_seeds, *col_seeds]
    seeded = [i for i, k in enumerate(keys) if not isinstance(k, ProjectedLatent)]
    ws = torch.empty(len(keys), num_ws, int(model.config.w_dim), device=model.device)
    if seeded:
        z = latents_for_seeds(model, [int(keys[i]) for i in seeded])  # type: ignore[arg-type]
        if isinstance(labels, torch.Tensor) and labels.ndim == 1 and len(labels) == len(keys):
            labels = labels[seeded]
        ws[seeded] = model.mapping(z, _labels_for(model, labels, len(z)), truncation_psi, truncation_cutoff)
    for i, k in enumerate(keys):
        if isinstance(k, ProjectedLatent):
            ws[i] = k.ws[0].to(ws)
    ws_row, ws_col = ws[:n_rows], ws[n_rows:]
    mixed = ws_row[:, None].repeat(1, n_cols, 1, 1)  # [R, C, num_ws, w_dim]
    mixed[:, :, layers] = ws_col[None, :, layers]
    # every cell but the corner, in grid order: column images, then per row its image and its cells
    cells = torch.cat([ws_col, torch.cat([ws_row[:, None], mixed], 1).flatten(0, 1)])  # [(R+1)(C+1) − 1, ...]
    # whose noise each cell is drawn with: a projected column image its own, a projected row's cells the row's
    owner = [*(col_seeds[j] for j in range(n_cols)), *(row_seeds[i] for i in range(n_rows) for _ in range(n_cols + 1))]
    projections = {id(k): k for k in owner if isinstance(k, ProjectedLatent)}
    groups = [(None, [i for i, k in enumerate(owner) if not isinstance(k, ProjectedLatent)])]
    groups += [(p, [i for i, k in enumerate(owner) if k is p]) for p in projections.values()]
    img: Optional[torch.Tensor] = None
    for p, idx in groups:
        gen = torch.Generator(device=model.device).manual_seed(0) if noise_mode == "random" and p is None else None
        with noise_loaded(model, None if p is None else p.noise):
            for j in range(0, len(idx), batch_size):
                part = idx[j:j + batch_size]
                out = model.synthesize(cells[part], noise_mode=noise_mode if p is None else "const",
                                       generator=gen).float().cpu()  # [len(part), C_img, H, W]
                if img is None:
                    img = out.new_empty((len(cells), *out.shape[1:]))
                img[part] = out
    assert img is not None
    corner = torch.full_like(img[:1], -1.0)  # black
    return torch.cat([corner, img]), n_cols + 1
