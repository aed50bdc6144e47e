"""Layers of the style-based generators and their discriminator (StyleGAN, StyleGAN2).

* Equalised learning rate (Karras et al. 2018, "Progressive Growing of GANs", §4.1): weights are
  stored ~ N(0, 1/lr_mul²) and scaled at run time by ``lr_mul / sqrt(fan_in)`` (He's constant), so
  Adam's per-parameter step size is the same for every layer. ``lr_mul`` < 1 (0.01 in the mapping
  network, Karras et al. 2019 §C) slows a layer down.
* Modulated convolution with demodulation (Karras et al. 2020, "Analyzing and Improving the Image
  Quality of StyleGAN", §2.2, Eq. 1–3): ``w'_ijk = s_i · w_ijk``, ``w''_ijk = w'_ijk / sqrt(Σ_ik
  w'_ijk² + ε)``. Two mathematically equal ways to compute it are provided (:func:`modulated_conv2d`):
  a grouped convolution with per-sample weights, and one shared convolution between a per-sample
  scaling of the input channels and of the output channels (StyleGAN2 Appendix B, "fused" =
  False in the official code).
* Resampling with the [1, 3, 3, 1] FIR filter of the official code (``upfirdn2d``): a convolution
  that upsamples is a stride-2 transposed convolution followed by the filter (gain 4), one that
  downsamples is the filter followed by a stride-2 convolution (StyleGAN2 Appendix B; Zhang 2019's
  antialiasing), with the official code's padding; the RGB skip path upsamples with bilinear
  interpolation, which is that filter up to the outermost pixels (edge-clamped instead of zero-padded).
* Noise inputs (Karras et al. 2019, §2): per-pixel N(0, 1) noise times a learned per-layer strength
  (initialised to 0), ``random`` (fresh per call), ``const`` (a fixed buffer per layer, for
  reproducible grids) or ``none``.

Images and feature maps are float32 NCHW; ``w`` is [N, w_dim] float32.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

NoiseMode = Literal["random", "const", "none"]
Activation = Optional[Literal["lrelu"]]

#: gain of the leaky ReLU (slope 0.2) in the StyleGAN networks: keeps unit variance with He init
LRELU_GAIN = math.sqrt(2.0)


def bias_act(x: torch.Tensor, bias: Optional[torch.Tensor], activation: Activation) -> torch.Tensor:
    """Add a per-channel ``bias`` [C] to ``x`` [N, C, ...] and apply ``lrelu`` (slope 0.2, gain √2) or nothing."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    if activation == "lrelu":
        x = F.leaky_relu(x, 0.2) * LRELU_GAIN
    return x


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate: x [N, in] → [N, out].

    Args:
        bias_init: initial bias (1 for the style affines, so styles start at 1: Karras et al. 2019 §C).
        lr_mul: learning-rate multiplier (the mapping network's 0.01).
        activation: ``lrelu`` or None.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: Activation = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation is None and b is not None:
            return torch.addmm(b, x, (self.weight * self.weight_gain).t())
        return bias_act(x @ (self.weight * self.weight_gain).t(), b, self.activation)


def _fir_kernel(device: torch.device, dtype: torch.dtype, gain: float = 1.0) -> torch.Tensor:
    """The separable [1, 3, 3, 1] low-pass filter as a normalised 4×4 kernel times ``gain``."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], device=device, dtype=dtype)
    k = torch.outer(k, k)
    return k / k.sum() * gain


def blur(x: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """Filter every channel of x [N, C, H, W] with the 4×4 [1, 3, 3, 1] kernel after zero-padding
    ``pad`` = (before, after) on both axes: → [N, C, H + before + after − 3, ...]."""
    c = x.shape[1]
    k = _fir_kernel(x.device, x.dtype, gain).expand(c, 1, 4, 4)
    return F.conv2d(F.pad(x, (pad[0], pad[1], pad[0], pad[1])), k, groups=c)


def conv2d_resample(x: torch.Tensor, weight: torch.Tensor, up: bool = False, down: bool = False,
                    groups: int = 1) -> torch.Tensor:
    """'Same' convolution of x [N, C_in·groups..., H, W] with ``weight`` [C_out, C_in/groups, k, k],
    optionally upsampling (→ 2H) or downsampling (→ H/2) by 2 with the [1, 3, 3, 1] filter (padding as
    the official ``conv2d_resample``). ``groups`` > 1 is the grouped path of :func:`modulated_conv2d`."""
    k = weight.shape[-1]
    if up:
        # transposed conv wants [C_in, C_out/groups, k, k]
        cout_g = weight.shape[0] // groups
        w = weight.reshape(groups, cout_g, -1, k, k).transpose(1, 2).reshape(-1, cout_g, k, k)
        x = F.conv_transpose2d(x, w, stride=2, groups=groups)  # [N, C_out, 2H + k − 2, ...]
        return blur(x, _up_pad(k), gain=4.0)  # [N, C_out, 2H, 2W]
    if down:
        p = k + 1
        return F.conv2d(blur(x, ((p + 1) // 2, p // 2)), weight, stride=2, groups=groups)
    return F.conv2d(x, weight, padding=k // 2, groups=groups)


def _up_pad(k: int) -> tuple[int, int]:
    """Padding of the filter after a stride-2 transposed k×k convolution so that H → 2H exactly."""
    # transposed output: 2(H − 1) + k = 2H + k − 2; the 4-tap filter removes 3: 2H + k − 5 + a + b = 2H
    total = 5 - k
    return ((total + 1) // 2, total // 2)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate, 'same' padding; ``down=True`` halves the resolution
    ([1, 3, 3, 1] filter, then the convolution at stride 2). x [N, in, H, W] → [N, out, H', W']."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: Activation = None, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.activation = activation
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = conv2d_resample(x, self.weight * self.weight_gain, down=self.down)
        return bias_act(x, self.bias, self.activation)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] → [N, C, 2H, 2W], bilinear (the [1, 3, 3, 1] filter up to the border pixels)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: bool = False, mode: Literal["grouped", "scaled"] = "scaled",
                     eps: float = 1e-8) -> torch.Tensor:
    """Modulated (and demodulated) convolution, StyleGAN2 Eq. 1 and 3, 'same' padding.

    Args:
        x: [N, C_in, H, W] float32.
        weight: [C_out, C_in, k, k], already multiplied by its equalised-LR gain.
        styles: [N, C_in] per-sample scales s_i of the input channels.
        demodulate: divide each output channel by the L2 norm of its modulated weights (Eq. 3).
        up: upsample by 2 (transposed convolution, then the [1, 3, 3, 1] filter): output [N, C_out, 2H, 2W].
        mode: ``grouped`` (one convolution with groups = N and per-sample weights [N·C_out, C_in, k, k])
            or ``scaled`` (scale x by s, convolve with the shared weight, scale the output by the
            demodulation coefficients: StyleGAN2 Appendix B). Equal up to rounding; which is faster
            depends on device and sizes (``benchmarks/bench_stylegan2.py``).
        eps: ε of Eq. 3.

    Returns:
        [N, C_out, H', W'] float32 (H' = 2H with ``up``, else H).

    Raises:
        ValueError: unknown ``mode``.
    """
    n, c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    if mode == "scaled":
        out = conv2d_resample(x * styles[:, :, None, None], weight, up=up)
        if demodulate:
            # Σ_ik (s_i w_ijk)² = Σ_i s_i² (Σ_k w_ijk²): [N, C_in] @ [C_in, C_out]
            d = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + eps)  # [N, C_out]
            out = out * d[:, :, None, None]
        return out
    if mode != "grouped":
        raise ValueError(f"unknown modulated-conv mode {mode!r}; use grouped or scaled")
    wts = weight[None] * styles[:, None, :, None, None]  # [N, C_out, C_in, k, k]
    if demodulate:
        wts = wts * torch.rsqrt(wts.square().sum(dim=(2, 3, 4), keepdim=True) + eps)
    out = conv2d_resample(x.reshape(1, n * c_in, h, w), wts.reshape(n * c_out, c_in, k, k), up=up, groups=n)
    return out.reshape(n, c_out, *out.shape[2:])


class NoiseInput(nn.Module):
    """Per-pixel noise times a learned strength (Karras et al. 2019 §2, 'B' in Fig. 1), added to
    x [N, C, R, R]. ``const`` uses a fixed N(0, 1) buffer [1, 1, R, R] drawn at construction."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, mode: NoiseMode = "random",
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """x [N, C, R, R] → x + noise · strength; ``random`` noise is drawn with ``generator`` (its
        device) when given, so seeded sampling is reproducible."""
        if mode == "none":
            return x
        if mode == "const":
            noise = self.noise_const
        elif mode == "random":
            shape = (x.shape[0], 1, x.shape[2], x.shape[3])
            if generator is None:
                noise = torch.randn(shape, device=x.device, dtype=x.dtype)
            else:
                noise = torch.randn(shape, generator=generator, device=generator.device).to(x.device, x.dtype)
        else:
            raise ValueError(f"unknown noise mode {mode!r}; use random, const or none")
        return x + noise * self.strength


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x [N, D] / sqrt(mean(x², dim=1) + ε): the pixel norm the mapping network applies to z (Karras et
    al. 2018 §4.2, as used in Karras et al. 2019)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z [N, z_dim] (and labels c) → w [N, w_dim] (Karras et al. 2019 §2, Fig. 1b): normalised z, then
    ``num_layers`` fully connected layers with leaky ReLU and learning-rate multiplier ``lr_mul``.

    Conditional (``num_classes`` > 0, as StyleGAN2-ADA): the label is embedded (a linear layer on the
    one-hot vector, w_dim outputs), normalised and concatenated to the normalised z.

    ``w_avg`` [w_dim] is the running mean of w (decay ``w_avg_beta`` per training batch) used as the
    truncation centre: ``w' = w_avg + ψ (w − w_avg)`` (the truncation trick in W, Karras et al. 2019,
    Appendix B), computed as ``lerp(w_avg, w, ψ)``.
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int = 8, lr_mul: float = 0.01, num_classes: int = 0,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_classes, self.w_avg_beta = z_dim, w_dim, num_classes, w_avg_beta
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None
        dims = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul, activation="lrelu")
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                update_w_avg: bool = False) -> torch.Tensor:
        """z [N, z_dim] float32 (ignored when z_dim = 0, as in the discriminator's label mapping), c int64
        [N] (conditional models) → w [N, w_dim]; ``update_w_avg`` moves ``w_avg`` toward this batch's mean
        w (training only); ``truncation_psi`` < 1 pulls w toward ``w_avg``."""
        parts = [normalize_2nd_moment(z)] if self.z_dim else []
        if self.embed is not None:
            if c is None:
                raise ValueError("a conditional mapping network needs labels c")
            onehot = F.one_hot(c.long(), self.num_classes).to(self.embed.weight.dtype)
            parts.append(normalize_2nd_moment(self.embed(onehot)))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    """Append the minibatch standard deviation feature (Karras et al. 2018 §3; StyleGAN2's
    ``MinibatchStdLayer``): x [N, C, H, W] → [N, C + num_channels, H, W]. Statistics are over groups of
    ``min(group_size, N)`` samples (N must be divisible by it; smaller batches use one group of N)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        g = n
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)  # [G, M, F, c, H, W]
    y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # [M, F]
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)
