"""StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
Quality of StyleGAN" (CVPR; arXiv:1912.04958), configuration F, with the training details of the
official PyTorch code (NVlabs/stylegan2-ada-pytorch, ``training/networks.py``, ``training/loss.py``).

Generator ``G = mapping + synthesis``:

* mapping network z [N, z_dim] → w [N, w_dim]: normalised z, ``mapping_layers`` (8) fully connected
  layers with learning-rate multiplier 0.01 (StyleGAN §2 and Appendix C); ``w_avg`` tracked for the
  truncation trick; conditional models concatenate an embedding of the label (as StyleGAN2-ADA).
* synthesis network ws [N, num_ws, w_dim] → img: a learned constant 4×4 input, at each resolution
  two modulated 3×3 convolutions with demodulation (the first upsamples; Eq. 1–3), per-pixel noise
  with learned strengths, bias and leaky ReLU, and an RGB output (modulated 1×1, no demodulation) at
  every resolution summed through upsampling: the "skip" generator (§4.1, Fig. 7b). num_ws =
  2·log2(R) − 2; ``ws[:, i]`` drives layer i (style mixing swaps ws from a crossover index on).

Discriminator: the residual architecture (Fig. 7c; ``d_architecture="orig"`` drops the skips, as the
official ``cifar`` configuration does) from RGB at full resolution down to 4×4, where
minibatch standard deviation (group 4), a 3×3 convolution and two fully connected layers give one
logit; conditional models use a projection of D's last features on an embedding of the label (as
StyleGAN2-ADA). Equalised learning rate everywhere (ProGAN §4.1).

Training (``training/loss.py`` of the official code): non-saturating logistic loss; lazy R1 on reals
every ``r1_interval`` (16) steps with weight γ/2 × interval; lazy path-length regularisation every
``pl_interval`` (4) steps on half the batch (§3.2, Eq. 4; weight 2, decay 0.01 of the running mean
``pl_mean``); style-mixing regularisation with probability 0.9 (StyleGAN §3.1); Adam(0.0025, β = (0,
0.99)) with the lazy-regularisation correction (lr × k/(k+1), β^(k/(k+1)); Appendix B); ``G_ema``
with a half-life of ``ema_kimg`` thousand images and ramp-up 0.05 (the 'auto' configuration of
stylegan2-ada-pytorch's ``train.py``: lr 0.0025 below 1024 px, γ = 0.0002·R²/batch, ema_kimg =
batch·10/32, here at batch 64). D-side augmentation: none, DiffAugment (Zhao et al. 2020) or ADA
(Karras et al. 2020b), applied to every image D sees, real and fake, in every phase.

Widths: ``min(channel_base / res, channel_max)`` channels at resolution ``res`` (the official
formula); the defaults (2048, 128) give 128 channels up to 16×16 and 64 at 32×32, about 1/16 of the
official CIFAR-10 network's multiply-adds, chosen to train at tens of images per second on a
2-core CPU (``benchmarks/bench_stylegan2.py``); ``--channel-base 16384 --channel-max 512`` is the
official 32×32 width.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_choices, help_field
from ..errors import ConfigError
from ..losses import r1_penalty
from ..nn import adam, ramped_ema_decay, update_ema
from ..nn.styled import (EqualConv2d, EqualLinear, MappingNetwork, NoiseInput, NoiseMode, bias_act,
                         minibatch_stddev, modulated_conv2d, upsample2x)
from ..registry import register_model
from .base import Batch, Phase, StepContext
from .d_augment import DAugmentConfig
from .gan import GANModel, check_image_size, discriminator_stats

ConvMode = Literal["auto", "grouped", "scaled"]
DArchitecture = Literal["resnet", "orig"]


@dataclasses.dataclass
class StyleGAN2Config(DAugmentConfig):
    resolution: int = help_field(32, "image size in pixels (a power of two ≥ 8: 32, 64, 128, ...)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    conditional: bool = help_field(False, "class-conditional (label embedding in the mapping network, "
                                          "projection discriminator); needs a labelled dataset")
    num_classes: Optional[int] = help_field(0, "number of classes (> 0 implies --conditional; default: the "
                                               "dataset's when conditional)")
    z_dim: int = help_field(512, "latent z dimension")
    w_dim: int = help_field(512, "intermediate latent w dimension")
    mapping_layers: int = help_field(8, "fully connected layers of the mapping network")
    mapping_lr_mul: float = help_field(0.01, "learning-rate multiplier of the mapping network")
    channel_base: int = help_field(2048, "feature maps at resolution r: min(channel_base / r, channel_max)")
    channel_max: int = help_field(128, "maximum feature maps per layer")
    mbstd_group: int = help_field(4, "minibatch-stddev group size in D")
    d_architecture: DArchitecture = help_field("resnet", "D blocks: resnet (residual, StyleGAN2 Fig. 7c) or orig "
                                                         "(no skip connection; the official cifar configuration)")
    lr: float = help_field(0.0025, "Adam learning rate of G and D")
    beta1: float = help_field(0.0, "Adam β1")
    beta2: float = help_field(0.99, "Adam β2")
    r1_gamma: Optional[float] = help_field(None, "R1 weight γ (default 0.0002·R²/64, the official 'auto' "
                                                 "heuristic at batch 64; 0 = off)")
    r1_interval: int = help_field(16, "lazy R1: every N steps")
    pl_weight: float = help_field(2.0, "path-length regularisation weight (0 = off)")
    pl_interval: int = help_field(4, "lazy path-length regularisation: every N steps")
    pl_batch_shrink: int = help_field(2, "path-length regularisation on batch / N images")
    pl_decay: float = help_field(0.01, "decay of the running path-length mean")
    style_mixing: float = help_field(0.9, "probability of style-mixing regularisation per batch")
    ema_kimg: float = help_field(20.0, "half-life of G_ema in thousands of images (batch 64 × 10 / 32)")
    ema_rampup: Optional[float] = help_field(0.05, "EMA ramp-up: half-life at most this × images seen "
                                                   "(None = off)")
    conv_mode: ConvMode = help_field("auto", "modulated convolution: grouped (per-sample weights) or scaled "
                                             "(input/output scaling); auto = scaled on CPU, grouped on CUDA")

    def __post_init__(self) -> None:
        check_image_size("StyleGAN2", self.resolution, self.channels)
        if self.num_classes:  # a class count given (Python API) makes the model conditional
            self.conditional = True
        if self.conditional and not self.num_classes:
            self.num_classes = None  # filled from the dataset
        if not self.conditional:
            self.num_classes = 0
        if self.r1_gamma is None:
            self.r1_gamma = 0.0002 * self.resolution ** 2 / 64
        for name in ("mapping_layers", "channel_base", "channel_max", "mbstd_group", "r1_interval", "pl_interval",
                     "pl_batch_shrink", "ada_interval", "z_dim", "w_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be ≥ 1")
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise ConfigError("r1_gamma and pl_weight must be ≥ 0")
        if not 0.0 <= self.style_mixing <= 1.0:
            raise ConfigError(f"style_mixing={self.style_mixing}: a probability in [0, 1]")
        if self.ema_kimg <= 0:
            raise ConfigError(f"ema_kimg={self.ema_kimg}: must be > 0")
        check_choices(self)  # d_architecture, conv_mode, augment: the CLI and saved configs check them too
        self.check_augment()

    def width(self, res: int) -> int:
        """Feature maps at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """Number of per-layer w inputs of the synthesis network: 2·log2(R) − 2."""
        return 2 * int(math.log2(self.resolution)) - 2


# ------------------------------------------------------------------ generator
class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution (optionally upsampling) + noise + bias + leaky ReLU: x [N, C_in, r, r]
    (r/2 with ``up``) and w [N, w_dim] → [N, C_out, r, r]."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.weight_gain = 1.0 / math.sqrt(c_in * 9)
        self.noise = NoiseInput(resolution)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.up = up

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode, mode: str,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), up=self.up, mode=mode)
        return bias_act(self.noise(x, noise_mode, generator), self.bias, "lrelu")


class ToRGB(nn.Module):
    """Modulated 1×1 convolution without demodulation, plus bias: [N, C_in, r, r] → [N, C, r, r]."""

    def __init__(self, c_in: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, c_in, 1, 1))
        self.weight_gain = 1.0 / math.sqrt(c_in)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, mode: str) -> torch.Tensor:
        out = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=False, mode=mode)
        return bias_act(out, self.bias, None)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] → img [N, C, R, R] float32 (unbounded; ≈ [-1, 1] once trained)."""

    def __init__(self, cfg: StyleGAN2Config, channels: int) -> None:
        super().__init__()
        self.num_ws, self.resolution = cfg.num_ws, cfg.resolution
        self.const = nn.Parameter(torch.randn(cfg.width(4), 4, 4))
        self.blocks = nn.ModuleList()
        res = 4
        while res <= cfg.resolution:
            block = nn.Module()
            c_out = cfg.width(res)
            block.conv0 = SynthesisLayer(cfg.width(res // 2), c_out, cfg.w_dim, res, up=True) if res > 4 else None
            block.conv1 = SynthesisLayer(c_out, c_out, cfg.w_dim, res)
            block.torgb = ToRGB(c_out, channels, cfg.w_dim)
            self.blocks.append(block)
            res *= 2
        self.conv_mode = "scaled"

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "random",
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be [N, {self.num_ws}, w_dim], got {list(ws.shape)}")
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # [N, C4, 4, 4]
        img, i, mode = None, 0, self.conv_mode
        for block in self.blocks:
            if block.conv0 is not None:
                x = block.conv0(x, ws[:, i], noise_mode, mode, generator)  # [N, C_r, r, r]
                i += 1
            x = block.conv1(x, ws[:, i], noise_mode, mode, generator)
            i += 1
            y = block.torgb(x, ws[:, i], mode)  # shares ws[:, i] with the next block's first layer
            img = y if img is None else upsample2x(img) + y
        return img


class StyleGenerator(nn.Module):
    """``G(z, c)`` = synthesis(mapping(z, c) broadcast to num_ws); images float32 [N, C, R, R]."""

    def __init__(self, cfg: StyleGAN2Config, channels: int, synthesis_cls: type = SynthesisNetwork) -> None:
        super().__init__()
        self.z_dim, self.num_ws = cfg.z_dim, cfg.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_lr_mul,
                                      num_classes=cfg.num_classes or 0)
        self.synthesis = synthesis_cls(cfg, channels)

    def map(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
            truncation_cutoff: Optional[int] = None, update_w_avg: bool = False) -> torch.Tensor:
        """z [N, z_dim] → ws [N, num_ws, w_dim]; truncation (toward ``w_avg``) applies to the layers
        below ``truncation_cutoff`` (all when None)."""
        w = self.mapping(z, c, update_w_avg=update_w_avg)
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = self.mapping.w_avg.lerp(ws[:, :cut], truncation_psi)
        return ws

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, noise_mode: NoiseMode = "random",
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.synthesis(self.map(z, c, truncation_psi, truncation_cutoff), noise_mode, generator)


# ------------------------------------------------------------------ discriminator
class DBlock(nn.Module):
    """D block: [N, C_in, r, r] → [N, C_out, r/2, r/2]: two 3×3 convolutions (the second downsampling),
    with a 1×1 downsampling skip and the sum scaled by √½ when ``residual`` (StyleGAN2 Fig. 7c, the
    ``resnet`` architecture) or without (``orig``, stylegan2-ada-pytorch ``DiscriminatorBlock``)."""

    def __init__(self, c_in: int, c_out: int, residual: bool = True) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3, activation="lrelu")
        self.conv1 = EqualConv2d(c_in, c_out, 3, activation="lrelu", down=True)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False, down=True) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.conv0(x))
        return y if self.skip is None else (self.skip(x) + y) * math.sqrt(0.5)


class StyleGAN2Discriminator(nn.Module):
    """img [N, C, R, R] float32 in [-1, 1] (and labels c int64 [N]) → logits [N] float32."""

    def __init__(self, cfg: StyleGAN2Config, channels: int) -> None:
        super().__init__()
        R = cfg.resolution
        self.from_rgb = EqualConv2d(channels, cfg.width(R), 1, activation="lrelu")
        blocks, res = [], R
        while res > 4:
            blocks.append(DBlock(cfg.width(res), cfg.width(res // 2), residual=cfg.d_architecture == "resnet"))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = cfg.width(4)
        self.mbstd_group = cfg.mbstd_group
        self.conv = EqualConv2d(c4 + 1, c4, 3, activation="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        k = cfg.num_classes or 0
        self.out = EqualLinear(c4, c4 if k else 1)
        # projection discriminator (StyleGAN2-ADA): the label's embedding, mapped like the generator's
        self.cmap = MappingNetwork(0, c4, cfg.mapping_layers, cfg.mapping_lr_mul, num_classes=k) if k else None

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.blocks(self.from_rgb(img))  # [N, C4, 4, 4]
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        x = self.out(self.fc(x.flatten(1)))  # [N, 1] or [N, C4]
        if self.cmap is None:
            return x[:, 0]
        if c is None:
            raise ValueError("a conditional discriminator needs labels c")
        cm = self.cmap(torch.empty(len(c), 0, device=x.device), c)
        return (x * cm).sum(dim=1) / math.sqrt(cm.shape[1])


# ------------------------------------------------------------------ the model
@register_model("stylegan2")
class StyleGAN2(GANModel):
    """StyleGAN2 (config F at CPU widths) with lazy R1 and path-length regularisation, style mixing,
    ``G_ema`` and optional DiffAugment/ADA.

    Phases: ``D`` (logistic loss on real and fake), ``Dreg`` (R1, every ``r1_interval`` steps), ``G``
    (non-saturating loss with style mixing), ``Greg`` (path length, every ``pl_interval`` steps). All
    reuse the step's one real batch. Logged: ``D/loss``, ``D/d_real``, ``D/d_fake``, ``D/acc_*``,
    ``D/ada_p`` (ADA), ``Dreg/r1``, ``G/loss``, ``Greg/pl_length``, ``Greg/pl_mean``.
    """

    Config = StyleGAN2Config
    #: ``cifar``: the switches of stylegan2-ada-pytorch's ``--cfg cifar`` (train.py ``cfg_specs['cifar']``
    #: and ``if cfg == 'cifar'``: map 2, mbstd 32, gamma 0.01, ema 500 kimg with ramp-up 0.05, no path-length
    #: regularisation, no style mixing, D without residual skips; its mb 64 and lrate 0.0025 are already the
    #: defaults). Not taken: its widths (fmaps 1, 512 channels at 32×32: far beyond a CPU budget) and its
    #: ADA (add ``--augment ada``; it made no difference on CIFAR-10 at our budgets, docs/stylegan.md).
    presets = {"cifar": {"mapping_layers": 2, "mbstd_group": 32, "r1_gamma": 0.01, "ema_kimg": 500.0,
                         "ema_rampup": 0.05, "pl_weight": 0.0, "style_mixing": 0.0, "d_architecture": "orig"}}
    #: the synthesis network class (``stylegan`` swaps in AdaIN synthesis; everything else is shared)
    synthesis_cls: type = SynthesisNetwork

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.G = StyleGenerator(config, c, self.synthesis_cls)
        self.D = StyleGAN2Discriminator(config, c)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.register_buffer("pl_mean", torch.zeros([]))
        self.init_augment()
        self.set_conv_mode(config.conv_mode)

    # ---- options -------------------------------------------------------------------------------
    def set_conv_mode(self, mode: ConvMode) -> None:
        """Choose the modulated-convolution path of G and G_ema (``auto``: by the current device)."""
        if mode == "auto":
            mode = "grouped" if self.device.type == "cuda" else "scaled"
        for G in (self.G, self.G_ema):
            G.synthesis.conv_mode = mode

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "StyleGAN2":
        out = super()._apply(fn, *args, **kwargs)
        if getattr(self.config, "conv_mode", "auto") == "auto" and hasattr(self, "G_ema"):
            self.set_conv_mode("auto")  # re-decide after .to(device)
        return out

    # ---- training --------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config

        def lazy(interval: int, on: bool) -> tuple[float, tuple[float, float]]:
            r = interval / (interval + 1) if on else 1.0  # StyleGAN2 Appendix B
            return c.lr * r, (c.beta1 ** r, c.beta2 ** r)

        lr_g, betas_g = lazy(c.pl_interval, c.pl_weight > 0)
        lr_d, betas_d = lazy(c.r1_interval, c.r1_gamma > 0)
        return {"G": adam(self.G.parameters(), lr_g, betas_g, eps=1e-8),
                "D": adam(self.D.parameters(), lr_d, betas_d, eps=1e-8)}

    def phases(self) -> list[Phase]:
        c = self.config
        out = [Phase("D")]
        if c.r1_gamma > 0:
            out.append(Phase("Dreg", optimizer="D", needs_batch=False, every=c.r1_interval))
        out.append(Phase("G", needs_batch=False))
        if c.pl_weight > 0:
            out.append(Phase("Greg", optimizer="G", needs_batch=False, every=c.pl_interval))
        return out

    def _labels(self, batch: Batch) -> Optional[torch.Tensor]:
        return batch["label"] if self.num_classes else None

    def _mixed_ws(self, n: int, c: Optional[torch.Tensor], device: torch.device,
                  update_w_avg: bool = False) -> torch.Tensor:
        """ws [n, num_ws, w_dim] of fresh z, with style mixing (probability ``style_mixing``): from a
        random crossover index on, the ws of a second z (StyleGAN §3.1)."""
        ws = self.G.map(torch.randn(n, self.config.z_dim, device=device), c, update_w_avg=update_w_avg)
        if self.config.style_mixing > 0 and torch.rand([]).item() < self.config.style_mixing:
            cutoff = int(torch.randint(1, ws.shape[1], []).item())
            ws2 = self.G.map(torch.randn(n, self.config.z_dim, device=device), c)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        img = batch["img"]
        n, dev, c = img.shape[0], img.device, self._labels(batch)
        if phase == "D":
            with torch.no_grad():
                fake = self.G.synthesis(self._mixed_ws(n, c, dev))
            real_logits = self.D(self.augment_d(img), c)
            fake_logits = self.D(self.augment_d(fake), c)
            loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
            return {"loss": loss, **discriminator_stats(real_logits, fake_logits), **self.observe_real_logits(real_logits)}
        if phase == "Dreg":  # lazy R1 (Mescheder et al. 2018, Eq. 9; StyleGAN2 Appendix B)
            real = img.detach().requires_grad_(True)
            r1 = r1_penalty(self.D(self.augment_d(real), c), real)
            return {"loss": r1 * (self.config.r1_gamma / 2) * self.config.r1_interval, "r1": r1.detach()}
        if phase == "G":
            fake = self.G.synthesis(self._mixed_ws(n, c, dev, update_w_avg=True))
            return {"loss": F.softplus(-self.D(self.augment_d(fake), c)).mean()}
        if phase == "Greg":  # lazy path-length regularisation (StyleGAN2 §3.2, Eq. 4)
            cfg = self.config
            m = max(1, n // cfg.pl_batch_shrink)
            ws = self._mixed_ws(m, None if c is None else c[:m], dev)
            fake = self.G.synthesis(ws)
            y = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
            (grad,) = torch.autograd.grad((fake * y).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()  # [m]: ‖J_wᵀ y‖ averaged over the layers
            with torch.no_grad():
                self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean(), cfg.pl_decay))
            penalty = (lengths - self.pl_mean).square().mean()
            return {"loss": penalty * cfg.pl_weight * cfg.pl_interval, "pl_length": lengths.mean().detach(),
                    "pl_mean": self.pl_mean.detach().clone()}
        raise ValueError(f"unknown phase {phase!r}")

    def after_step(self, ctx: StepContext) -> None:
        c = self.config
        update_ema(self.G_ema, self.G,
                   ramped_ema_decay(ctx.images_per_step, ctx.images_seen, c.ema_kimg * 1000, c.ema_rampup))
        self.update_augment(ctx)

    # ---- using the model -------------------------------------------------------------------------
    #: has a mapping network: sampling takes truncation_psi / truncation_cutoff / noise_mode, and
    #: :meth:`mapping` / :meth:`synthesize` give access to w (style mixing, projection, w interpolation)
    has_style_latents = True

    @property
    def num_ws(self) -> int:
        """Number of per-layer w inputs of the synthesis network (style-mixing layer indices 0..num_ws-1)."""
        return self.config.num_ws

    @torch.no_grad()
    def mapping(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None) -> torch.Tensor:
        """z [N, z_dim] (labels int64 [N] for conditional models) → ws [N, num_ws, w_dim] float32 of
        ``G_ema``'s mapping network, truncated toward ``w_avg`` below ``truncation_cutoff``."""
        labels = self._check_labels(len(z), labels, None)
        return self.G_ema.map(z.to(self.device, torch.float32), labels, truncation_psi, truncation_cutoff)

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor, noise_mode: NoiseMode = "const",
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] → img float32 [N, C, R, R] in [-1, 1] (clamped) with ``G_ema``'s
        synthesis network; ``w`` [N, w_dim] is broadcast to every layer.

        Raises:
            ValueError: ws of the wrong shape.
        """
        ws = ws.to(self.device, torch.float32)
        if ws.ndim == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        return self._output(self.G_ema.synthesis(ws, noise_mode, generator))

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                 truncation_cutoff: Optional[int] = None, noise_mode: NoiseMode = "random",
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z [N, z_dim] (labels int64 [N] for conditional models) → img float32 [N, C, R, R] in [-1, 1]
        (clamped) with ``G_ema``; ``truncation_psi`` < 1 trades variety for typicality (StyleGAN
        Appendix B); noise ``random`` (drawn with ``generator``), ``const`` or ``none``."""
        labels = self._check_labels(len(z), labels, generator)
        img = self.G_ema(z.to(self.device, torch.float32), labels, truncation_psi, truncation_cutoff, noise_mode,
                         generator)
        return self._output(img)

    def _output(self, img: torch.Tensor) -> torch.Tensor:
        """The synthesis network's output as returned to users: clamped to [-1, 1]."""
        return img.clamp(-1, 1)

    def _check_labels(self, n: int, labels: Optional[torch.Tensor],
                      generator: Optional[torch.Generator]) -> Optional[torch.Tensor]:
        if not self.num_classes:
            return None
        if labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator,
                                   device=generator.device if generator is not None else self.device)
        return labels.to(self.device)

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
               truncation_cutoff: Optional[int] = None, noise_mode: NoiseMode = "random") -> torch.Tensor:
        z = self.sample_latents(n, generator)
        labels = self._check_labels(n, labels, generator)
        return self.generate(z, labels, truncation_psi, truncation_cutoff, noise_mode, generator)
