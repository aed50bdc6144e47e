"""Building blocks of the image-to-image models (``cyclegan``, ``pix2pix``): their generators and
discriminator, the history pool of generated images, and the training helpers both models share.

* :class:`ResnetGenerator` — Johnson et al. 2016's network as CycleGAN uses it (Zhu et al. 2017,
  appendix 7.2): ``c7s1-64, d128, d256, R256 × blocks, u128, u64, c7s1-C`` with instance norm,
  reflection padding at the 7×7 and residual convolutions, tanh output.
* :class:`UnetGenerator` — the pix2pix encoder-decoder with skip connections (Isola et al. 2017,
  §3.2.1 and appendix 6.1.1): ``C64-C128-C256-C512-C512…`` down to 1×1, decoder
  ``CD512-CD512-CD512-C512-C256-C128-C64`` with the encoder's maps concatenated at every level.
* :class:`PatchDiscriminator` — the Markovian "PatchGAN" (Isola et al. 2017, §3.2.2 and 6.1.2):
  ``C64-C128-C256-C512`` of 4×4 convolutions, one logit per overlapping patch; three stride-2
  layers give 70×70 patches (:func:`receptive_field`).
* :class:`ImagePool` — the history of generated images that the discriminators see (Shrivastava
  et al. 2017, §2.3; Zhu et al. 2017, §4).
* :func:`translation_gan_losses` (the papers' weighting of the adversarial terms),
  :func:`constant_then_linear_decay` (the learning-rate schedule) and :func:`random_jitter` (random
  resize-crop and mirroring).

Widths follow the papers: ``width`` (ngf/ndf) = 64 channels in the first layer, doubled at every
stride-2 layer up to 8 × width. Weights start as N(0, 0.02) (:func:`imagegen.nn.dcgan_init`; Zhu et
al. 2017 appendix 7.1, Isola et al. 2017 appendix 6.2).

Images are float32 [N, C, H, W] in [-1, 1] everywhere.
"""
from __future__ import annotations

import math
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..losses import get_gan_loss
from .init import dcgan_init

Norm = Literal["batch", "instance", "none"]
NORMS = ("batch", "instance", "none")


# ---- normalisation ---------------------------------------------------------------------------------
class ImageStatsBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that, in eval mode, normalises every image with its own statistics (over H, W)
    instead of the running ones, keeping the learned scale and shift.

    This is pix2pix's inference (Isola et al. 2017, §3.3: batch norm "using the statistics of the
    test batch", at the paper's test batch size of 1): an image's output does not depend on the other
    images of its batch. Training is ordinary batch norm (the running statistics are still tracked).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def norm_layer(kind: Norm, channels: int, image_stats_at_eval: bool = False) -> nn.Module:
    """``batch`` (BatchNorm2d; :class:`ImageStatsBatchNorm2d` with ``image_stats_at_eval``),
    ``instance`` (InstanceNorm2d without learned scale and shift, as the reference implementation)
    or ``none`` (identity)."""
    if kind == "batch":
        return (ImageStatsBatchNorm2d if image_stats_at_eval else nn.BatchNorm2d)(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm={kind!r}: use one of {', '.join(NORMS)}")


def _bias(kind: Norm) -> bool:
    """Convolutions followed by batch norm need no bias (its shift replaces it)."""
    return kind != "batch"


# ---- ResNet generator (CycleGAN) ---------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """``R_k``: x + [reflect-pad 1, 3×3 conv, instance norm, ReLU, reflect-pad 1, 3×3 conv, instance
    norm](x), for x [N, k, H, W] (H, W ≥ 2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer("instance", channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer("instance", channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Zhu et al. 2017, appendix 7.2), e.g. with ``width=64``, ``blocks=9``:
    ``c7s1-64, d128, d256, R256 × 9, u128, u64, c7s1-C``.

    ``c7s1-k``: reflect-pad 3, 7×7 conv, instance norm, ReLU; ``dk``: 3×3 conv stride 2 (zero padding
    1, as the reference implementation), instance norm, ReLU; ``Rk``: :class:`ResidualBlock`; ``uk``:
    3×3 transposed conv stride ½, instance norm, ReLU; the last ``c7s1`` has no norm and ends in tanh.

    Args:
        in_channels, out_channels: image channels C_in, C_out.
        width: channels of the first layer (the paper's 64).
        blocks: residual blocks (the paper: 6 for 128×128 training images, 9 for 256×256 and more).

    Shapes: img float32 [N, C_in, H, W] in [-1, 1], H and W multiples of 4 and ≥ 8 → [N, C_out, H, W]
    in [-1, 1].
    """

    #: inputs must be multiples of this (two stride-2 convolutions) …
    size_multiple = 4
    #: … and at least this large (the residual blocks' reflection padding needs H/4 ≥ 2)
    min_size = 8

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 9) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, w, 7), norm_layer("instance", w),
                                   nn.ReLU(True)]
        for m in (1, 2):  # d128, d256: [N, w·m, H/m, W/m] → [N, 2w·m, H/2m, W/2m]
            layers += [nn.Conv2d(w * m, w * m * 2, 3, stride=2, padding=1), norm_layer("instance", w * m * 2),
                       nn.ReLU(True)]
        layers += [ResidualBlock(4 * w) for _ in range(blocks)]  # [N, 4w, H/4, W/4]
        for m in (4, 2):  # u128, u64: doubles H and W
            layers += [nn.ConvTranspose2d(w * m, w * m // 2, 3, stride=2, padding=1, output_padding=1),
                       norm_layer("instance", w * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, out_channels, 7), nn.Tanh()]  # [N, C_out, H, W]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img)


# ---- U-Net generator (pix2pix) ----------------------------------------------------------------------
def unet_widths(depth: int, width: int) -> list[int]:
    """Channels of the U-Net's encoder maps, from the outermost: ``width · min(2^i, 8)`` (64, 128,
    256, 512, 512, … for width 64)."""
    return [width * min(2 ** i, 8) for i in range(depth)]


class UnetGenerator(nn.Module):
    """pix2pix's U-Net (Isola et al. 2017, §3.2.1 and appendix 6.1.1).

    Encoder: ``depth`` 4×4 convolutions of stride 2 (``C64-C128-C256-C512-C512-…``), each preceded
    by LeakyReLU(0.2) (none before the first) and followed by ``norm`` (none on the first, as the
    paper, nor on the innermost, whose map is 1×1 at the training size, as the reference
    implementation). Decoder: ``depth`` 4×4 transposed convolutions of stride ½, each preceded by ReLU;
    the input of every decoder layer but the first is the previous layer's output concatenated with
    the encoder map of the same size (the skip connections), so the decoder of the paper
    ``CD512-CD512-CD512-C512-C256-C128-C64`` reads twice those channels; the last layer maps to
    ``out_channels`` and ends in tanh. Dropout (p = 0.5) follows the first ``dropout_layers``
    decoder layers, the paper's ``CD`` layers (the reference implementation puts them one level out,
    after the 2nd to 4th decoder layers).

    Dropout is the generator's noise z (§3.1). In training mode it draws from torch's global RNG; in
    eval mode it is applied only when ``forward`` is given a ``dropout_generator`` (pix2pix keeps it
    at inference as the paper does; see :mod:`imagegen.models.pix2pix`).

    Args:
        in_channels, out_channels: image channels.
        depth: stride-2 layers; ``log2(resolution)`` takes a training image down to 1×1 (8 at 256×256).
        width: channels of the first layer (the paper's 64).
        norm: ``batch`` (the paper), ``instance`` or ``none``.
        dropout_layers: decoder layers followed by dropout, from the innermost (the paper's 3); at
            most ``depth - 1``.
        image_stats_at_eval: batch norm normalises each image by its own statistics in eval mode
            (:class:`ImageStatsBatchNorm2d`) instead of the running ones.

    Shapes: img float32 [N, C_in, H, W] in [-1, 1], H and W multiples of ``2**depth`` → [N, C_out, H, W]
    in [-1, 1].

    Raises:
        ConfigError: depth < 2, dropout_layers outside [0, depth - 1], or an unknown norm.
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int, width: int = 64, norm: Norm = "batch",
                 dropout_layers: int = 3, image_stats_at_eval: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        if depth < 2:
            raise ConfigError(f"U-Net depth {depth}: needs at least 2 stride-2 layers (images of 4 pixels or more)")
        if not 0 <= dropout_layers <= depth - 1:
            raise ConfigError(f"dropout_layers={dropout_layers}: a U-Net of depth {depth} has {depth - 1} hidden "
                              f"decoder layers; use 0 to {depth - 1}")
        c = unet_widths(depth, width)
        bias = _bias(norm)
        self.downs = nn.ModuleList([nn.Conv2d(in_channels, c[0], 4, 2, 1)])  # C64: no norm
        for i in range(1, depth):
            innermost = i == depth - 1
            self.downs.append(nn.Sequential(
                nn.LeakyReLU(0.2), nn.Conv2d(c[i - 1], c[i], 4, 2, 1, bias=bias or innermost),
                nn.Identity() if innermost else norm_layer(norm, c[i], image_stats_at_eval)))
        self.ups = nn.ModuleList()
        for j in range(depth - 1):  # from the innermost: c[d-1] → c[d-2], then 2·c[i+1] → c[i]
            c_in = c[depth - 1] if j == 0 else 2 * c[depth - 1 - j]
            c_out = c[depth - 2 - j]
            self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias),
                                          norm_layer(norm, c_out, image_stats_at_eval)))
        self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * c[0], out_channels, 4, 2, 1), nn.Tanh()))
        self.depth, self.dropout_layers, self.p = depth, dropout_layers, dropout
        self.apply(dcgan_init)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of ``2**depth`` (and at least that)."""
        return 2 ** self.depth

    def _dropout(self, h: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        if self.training:
            return F.dropout(h, self.p, training=True)
        if generator is None:
            return h
        keep = torch.rand(h.shape, generator=generator, device=generator.device).to(h.device) >= self.p
        return h * keep / (1 - self.p)

    def forward(self, img: torch.Tensor, dropout_generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """img [N, C_in, H, W] → [N, C_out, H, W]; ``dropout_generator`` (any device) draws the dropout
        masks in eval mode (None: no dropout in eval mode)."""
        skips = []
        h = img
        for down in self.downs:  # [N, c_i, H / 2^(i+1), W / 2^(i+1)]
            h = down(h)
            skips.append(h)
        skips.pop()  # the innermost map feeds the decoder directly
        for j, up in enumerate(self.ups):
            h = up(h)  # [N, c, H / 2^(d-1-j), W / 2^(d-1-j)]
            if j < self.dropout_layers:
                h = self._dropout(h, dropout_generator)
            if skips:
                h = torch.cat([skips.pop(), h], 1)  # the skip connection: encoder map, then decoder map
        return h


# ---- PatchGAN ---------------------------------------------------------------------------------------------
def patch_layers(n_layers: int = 3) -> list[tuple[int, int]]:
    """(kernel, stride) of the PatchGAN's convolutions (all with padding 1): ``n_layers`` of stride 2,
    then two of stride 1."""
    return [(4, 2)] * n_layers + [(4, 1), (4, 1)]


def receptive_field(n_layers: int = 3) -> int:
    """Side in pixels of the input patch that one PatchGAN output sees: r ← (r − 1)·stride + kernel
    from the output back to the input. 70 for ``n_layers=3`` (the paper's 70×70 PatchGAN), 34 for 2,
    16 for 1."""
    r = 1
    for k, s in reversed(patch_layers(n_layers)):
        r = (r - 1) * s + k
    return r


def patch_output_size(size: int, n_layers: int = 3) -> int:
    """Side of the PatchGAN's logit map for an input side of ``size`` pixels (≤ 0: too small)."""
    for k, s in patch_layers(n_layers):
        size = (size + 2 - k) // s + 1
        if size <= 0:
            return 0
    return size


def patch_min_size(n_layers: int = 3) -> int:
    """Smallest input side for which the PatchGAN gives at least one logit (24 for ``n_layers=3``)."""
    size = 1
    while patch_output_size(size, n_layers) < 1:
        size += 1
    return size


class PatchDiscriminator(nn.Module):
    """The PatchGAN discriminator (Isola et al. 2017, §3.2.2 and appendix 6.1.2), e.g. with ``width=64``,
    ``n_layers=3``: ``C64-C128-C256-C512`` then a convolution to one channel.

    4×4 convolutions with padding 1: ``n_layers`` of stride 2 (the first without norm), one more of
    stride 1 (width · min(2^n_layers, 8) channels), then the 1-channel output; LeakyReLU(0.2) after
    every one but the last. Each output logit judges one :func:`receptive_field`-sized patch (70×70
    for 3 layers).

    Args:
        in_channels: input channels (pix2pix's conditional D takes input and output images
            concatenated: 2·C).
        width: channels of the first layer (the paper's 64).
        n_layers: stride-2 layers (3: 70×70 patches).
        norm: ``batch`` (pix2pix), ``instance`` (CycleGAN) or ``none``.

    Shapes: img float32 [N, in_channels, H, W] → logits float32 [N, 1, h, w] (unbounded), h =
    :func:`patch_output_size` (H) (e.g. 30 for 256).
    """

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: Norm = "batch") -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"PatchGAN n_layers={n_layers}: use 1 or more (3 gives 70×70 patches)")
        chans = [in_channels] + [width * min(2 ** i, 8) for i in range(n_layers + 1)]
        layers: list[nn.Module] = []
        for i, (k, s) in enumerate(patch_layers(n_layers)[:-1]):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], k, s, 1, bias=i == 0 or _bias(norm)))
            if i > 0:
                layers.append(norm_layer(norm, chans[i + 1]))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Conv2d(chans[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers
        self.apply(dcgan_init)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img)


# ---- history pool ---------------------------------------------------------------------------------------
class ImagePool:
    """A history of generated images for the discriminator (Shrivastava et al. 2017, §2.3, in the form
    CycleGAN uses: Zhu et al. 2017, §4).

    Until the pool holds ``size`` images, every generated image is stored and returned as it is. Then
    each one is, with probability ½, returned as it is, or else swapped with a stored image chosen
    uniformly at random: the stored one is returned and the new one takes its place. Randomness comes
    from torch's global (CPU) RNG, which the trainer checkpoints, so a resumed run draws the same.

    ``state()`` / ``load_state()`` give the stored images as one tensor, for a model's
    ``training_state``.

    Args:
        size: images kept (the paper's 50); 0 turns the pool off (:meth:`query` returns its input).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ConfigError(f"pool_size={size}: use 0 (off) or a positive number of images (the paper's 50)")
        self.size = size
        self.images: list[torch.Tensor] = []  # each [C, H, W], detached

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, C, H, W] (generated now) → [B, C, H, W] detached, a mix of them and stored ones."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for img in images:
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand(())) < 0.5:
                i = int(torch.randint(len(self.images), ()))
                out.append(self.images[i])
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state(self) -> dict[str, torch.Tensor]:
        """``{"images": [n, C, H, W] float32 on the CPU}`` (an empty [0] tensor when the pool is empty)."""
        return {"images": torch.stack(self.images).cpu() if self.images else torch.zeros(0)}

    def load_state(self, state: dict[str, torch.Tensor], device: Optional[torch.device] = None) -> None:
        """Restore what :meth:`state` returned, moving the images to ``device``."""
        images = state["images"]
        self.images = [img.to(device) for img in images] if images.numel() else []


# ---- training helpers ---------------------------------------------------------------------------------
LossFn = Callable[..., torch.Tensor]


def translation_gan_losses(name: str) -> tuple[LossFn, LossFn]:
    """(D loss(real_logits, fake_logits), G loss(fake_logits)) weighted as both papers train them.

    ``L_D = ½ [ℓ(D(real), 1) + ℓ(D(fake), 0)]`` — "we divide the objective by 2 while optimizing D"
    (Isola et al. 2017, §3.3; the CycleGAN reference does the same) — and ``L_G = ℓ(D(fake), 1)``,
    with ℓ the binary cross-entropy on logits (``nonsaturating``: pix2pix's Eq. 1, with G maximising
    log D(x, G(x)) rather than minimising log(1 − D(x, G(x))), §3.3) or the squared error (``lsgan``: CycleGAN §4, G
    minimises E[(D(G(x)) − 1)²]). Means over every patch logit. Built on :mod:`imagegen.losses`, whose
    LSGAN losses carry Mao et al.'s ½ on both terms; here G's term is not halved, so that λ = 10
    (cycle) and λ = 100 (L1) keep the papers' meaning.

    Raises:
        ConfigError: another loss name.
    """
    d_loss, g_loss = get_gan_loss(name)
    if name == "nonsaturating":
        return (lambda real, fake: 0.5 * d_loss(real, fake)), g_loss
    if name == "lsgan":
        return d_loss, (lambda fake: 2.0 * g_loss(fake))
    raise ConfigError(f"loss={name!r}: image-to-image models use nonsaturating or lsgan")


def constant_then_linear_decay(decay_start: float) -> Callable[[object], float]:
    """Learning-rate factor: 1 for the first ``decay_start`` fraction of training, then linear to 0 at
    the last step — CycleGAN's "same learning rate for the first 100 epochs and linearly decay the
    rate to zero over the next 100 epochs" (Zhu et al. 2017, §4) is ``decay_start = 0.5``; 1 keeps
    it constant. A function of the trainer's step context: ``ctx.progress`` = step / total steps, so
    a resumed run given a new length recomputes where the decay starts."""
    if not 0.0 <= decay_start <= 1.0:
        raise ConfigError(f"decay_start={decay_start}: give the fraction of training before the decay, in [0, 1]")

    def factor(ctx) -> float:  # noqa: ANN001 - a StepContext
        if decay_start >= 1.0:
            return 1.0
        return min(1.0, (1.0 - ctx.progress) / (1.0 - decay_start))

    return factor


def decay_schedules(decay_start: float,
                    names: tuple[str, ...] = ("G", "D")) -> dict[str, Callable[[object], float]]:
    """The image-to-image models' learning-rate schedules: :func:`constant_then_linear_decay` for each
    optimiser in ``names``, or none at ``decay_start`` 1 — a constant rate needs no schedule, so a run
    bounded by a ``--minutes`` budget alone (no length to decay over) is allowed.

    Raises:
        ConfigError: ``decay_start`` outside [0, 1].
    """
    decay = constant_then_linear_decay(decay_start)
    return {} if decay_start >= 1.0 else {name: decay for name in names}


def random_jitter(img: torch.Tensor, scale: float) -> torch.Tensor:
    """Random resize-crop and mirroring (Isola et al. 2017, appendix 6.2: 256 → 286 → random 256 crop,
    and mirroring; CycleGAN's reference uses the same ``resize_and_crop`` with flips).

    Every image of the batch is enlarged to ``round(scale·H) × round(scale·W)`` (bicubic, clamped to
    [-1, 1]), cropped back to H × W at an offset uniform over all positions, and mirrored left-right
    with probability ½. Randomness comes from torch's global (CPU) RNG, which the trainer
    checkpoints. Several images that must move together (the two halves of a pair) are jittered as
    one by concatenating them along the channels first.

    Args:
        img: float32 [B, C, H, W] in [-1, 1], any device.
        scale: enlargement factor ≥ 1 (286/256 in the papers; 1 = mirroring only).

    Returns:
        float32 [B, C, H, W] in [-1, 1] on ``img``'s device.
    """
    from ..data.augment import random_flip

    B, _, H, W = img.shape
    if scale > 1.0:
        size = (max(H, round(scale * H)), max(W, round(scale * W)))
        big = F.interpolate(img, size=size, mode="bicubic", align_corners=False).clamp_(-1, 1)
        dy = torch.randint(0, size[0] - H + 1, (B,)).tolist()
        dx = torch.randint(0, size[1] - W + 1, (B,)).tolist()
        img = torch.stack([big[i, :, y:y + H, x:x + W] for i, (y, x) in enumerate(zip(dy, dx))])
    return random_flip(img, torch.default_generator)


def check_translate_input(img: torch.Tensor, channels: int, multiple: int, min_size: int, model: str) -> None:
    """Raise :class:`ConfigError` unless ``img`` is [N, channels, H, W] with H and W multiples of
    ``multiple`` and at least ``min_size`` (what :meth:`GenerativeModel.translate` accepts)."""
    if img.ndim != 4 or img.shape[1] != channels:
        raise ConfigError(f"{model} translates images [N, {channels}, H, W], not {tuple(img.shape)}; convert the "
                          f"input to {channels} channel(s)")
    h, w = img.shape[-2:]
    if h % multiple or w % multiple or min(h, w) < min_size:
        fit_h, fit_w = (max(min_size, multiple * math.ceil(s / multiple)) for s in (h, w))
        raise ConfigError(f"{model} needs image sides that are multiples of {multiple} and at least {min_size} "
                          f"pixels, not {w}x{h}; pad or resize the input (e.g. pad to {fit_w}x{fit_h})")
