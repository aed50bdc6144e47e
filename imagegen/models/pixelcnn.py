"""Gated PixelCNN (van den Oord et al. 2016b, "Conditional Image Generation with PixelCNN Decoders",
arXiv:1606.05328), registered as ``pixelcnn``.

The body is a stack of gated layers, each with two streams (§2.2, Figure 2):

* a **vertical stack** whose output at row i sees a k×k window's rows i − k//2 … i (all columns
  of the window): a (k//2 + 1)×k convolution over the rows above and the current one;
* a **horizontal stack** whose output at (i, j) sees row i's columns j − k//2 … j (1×(k//2 + 1)
  convolution), plus the vertical stack's pre-activation *shifted down one row* through a 1×1
  convolution, so it gets everything above row i without ever seeing row i to the right of j.

The two streams together cover every earlier pixel within the receptive field, which removes the
"blind spot" of the original masked PixelCNN (§2.2). The first layer is of mask type A (the
horizontal convolution stops at column j − 1, so pixel (i, j) does not see itself); later layers are
type B (they see the current position, which by then only carries information from earlier pixels).
Each stream is gated, ``y = tanh(W_f ∗ x + V_f·y_c) ⊙ σ(W_g ∗ x + V_g·y_c)`` (Eq. 2 and 4, with the
class embedding ``V·y_c`` as the conditional bias), and the horizontal stack has a 1×1 convolution
and a residual connection after the gate in every layer but the first. The output head (see
:mod:`imagegen.nn.pixel_heads`) reads the last horizontal stack.

Fast sampling (:class:`GatedPixelCNNCache`) keeps every layer's activations and computes only what a
new pixel changes (Ramachandran et al. 2017, arXiv:1704.06001: the vertical stack once per finished row, the
horizontal stack once per pixel), which turns H·W full passes into about one pass's work.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..registry import register_model
from .autoregressive import AutoregressiveConfig, AutoregressiveModel


@dataclasses.dataclass
class PixelCNNConfig(AutoregressiveConfig):
    width: int = help_field(64, "channels of each stream (vertical and horizontal) in every gated layer")
    num_layers: int = help_field(12, "gated layers (the first is mask type A)")
    kernel_size: int = help_field(3, "kernel size k of the gated layers after the first (odd)")
    first_kernel_size: int = help_field(7, "kernel size of the first (mask A) layer (odd)")

    _positive = AutoregressiveConfig._positive + ("width", "num_layers")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("kernel_size", "first_kernel_size"):
            k = getattr(self, name)
            if k < 3 or k % 2 == 0:
                raise ConfigError(f"{name}={k}: use an odd size ≥ 3")


def _gate(x: torch.Tensor) -> torch.Tensor:
    """tanh(first half) ⊙ σ(second half) along dim 1: [N, 2F, ...] → [N, F, ...]."""
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016b, Figure 2).

    Args:
        in_channels: input channels of both streams (C for the first layer, else F).
        width: F, output channels of both streams.
        kernel_size: k (odd).
        first: mask type A (the horizontal stack excludes the current pixel; no residual).
        cond_dim: size of the conditioning vector (0 = unconditional).
    """

    def __init__(self, in_channels: int, width: int, kernel_size: int, first: bool, cond_dim: int = 0) -> None:
        super().__init__()
        p = kernel_size // 2
        self.p, self.first = p, first
        self.v_conv = nn.Conv2d(in_channels, 2 * width, (p + 1, kernel_size))
        self.v_to_h = nn.Conv2d(2 * width, 2 * width, 1)
        self.h_conv = nn.Conv2d(in_channels, 2 * width, (1, p if first else p + 1))
        self.h_out = nn.Conv2d(width, width, 1)
        self.cond = nn.Linear(cond_dim, 4 * width, bias=False) if cond_dim else None

    def cond_bias(self, cond: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Conditioning vectors [N, cond_dim] → biases (vertical [N, 2F], horizontal [N, 2F])."""
        if self.cond is None or cond is None:
            return None, None
        b = self.cond(cond)
        return b.chunk(2, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor, cond: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """v, h [N, C_in, H, W] → v', h' [N, F, H, W]."""
        p = self.p
        hh, ww = v.shape[-2:]
        bv, bh = self.cond_bias(cond)
        v_pre = self.v_conv(F.pad(v, (p, p, p, 0)))  # row i sees rows i − p … i
        if bv is not None:
            v_pre = v_pre + bv[:, :, None, None]
        v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :hh]  # row i gets row i − 1 (zeros in row 0)
        if self.first:  # columns j − p … j − 1
            h_pre = self.h_conv(F.pad(h, (p, 0, 0, 0)))[..., :ww]
        else:  # columns j − p … j
            h_pre = self.h_conv(F.pad(h, (p, 0, 0, 0)))
        h_pre = h_pre + self.v_to_h(v_down)
        if bh is not None:
            h_pre = h_pre + bh[:, :, None, None]
        h_new = self.h_out(_gate(h_pre))
        if not self.first:
            h_new = h_new + h
        return _gate(v_pre), h_new


@register_model("pixelcnn")
class PixelCNN(AutoregressiveModel):
    """Gated PixelCNN with optional class conditioning (see the module docstring).

    Python API::

        from imagegen.sampling import load_run, generate
        model = load_run("runs/mnist-pixelcnn")
        img = generate(model, 16, seed=0)                      # [16, 1, 28, 28] in [-1, 1]
        logp = model.log_prob(model.likelihood_targets(x))     # exact log p(x), nats per image
        done = model.complete(x, known=top_half_mask)          # keep the top half, sample the rest
    """

    Config = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        c, f = config.channels or 1, config.width
        cond_dim = self.build_label_embedding(f)
        self.layers = nn.ModuleList(
            GatedLayer(c if i == 0 else f, f, config.first_kernel_size if i == 0 else config.kernel_size,
                       first=(i == 0), cond_dim=cond_dim)
            for i in range(config.num_layers))
        self.build_head(f)

    def body(self, x_in: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        cond = self.label_vectors(labels)
        v = h = x_in  # [N, C, H, W]
        for layer in self.layers:
            v, h = layer(v, h, cond)  # [N, F, H, W]
        return h

    def fast_sampler(self, x: torch.Tensor, labels: Optional[torch.Tensor]) -> "GatedPixelCNNCache":
        return GatedPixelCNNCache(self, x, self.label_vectors(labels))


class GatedPixelCNNCache:
    """Incremental evaluation of :class:`PixelCNN`'s body during sampling (Ramachandran et al. 2017).

    For every layer it keeps the vertical stack's (padded) input for all rows finished so far, the
    horizontal stack's (padded) input for the current row, and the vertical-to-horizontal term of
    every row. When row i is finished, :meth:`end_row` computes row i of every vertical stack (one
    row-high convolution per layer); :meth:`pixel` computes the horizontal stacks at (i, j) only
    (a 1×(k//2 + 1) window per layer). The arithmetic is the one of :meth:`PixelCNN.body`, on the same
    windows; tests check that sampling with and without the cache gives identical images.

    Args:
        model: the PixelCNN (in eval mode).
        x: network-scale images [N, C, H, W], filled in place by the sampling loop.
        cond: conditioning vectors [N, F] or None.
    """

    def __init__(self, model: PixelCNN, x: torch.Tensor, cond: Optional[torch.Tensor]) -> None:
        self.model, self.x = model, x
        n, _, hh, ww = x.shape
        self.v_in, self.h_in, self.vh, self.bh, self.bv = [], [], [], [], []
        for layer in model.layers:
            p, cin = layer.p, layer.v_conv.in_channels
            self.v_in.append(x.new_zeros(n, cin, hh + p, ww + 2 * p))  # rows padded on top, cols both sides
            self.h_in.append(x.new_zeros(n, cin, ww + p))  # the current row, padded on the left
            two_f = layer.v_to_h.out_channels
            # v_to_h of the shifted vertical stack; row 0 sees zeros, i.e. the bias alone
            self.vh.append(layer.v_to_h.bias.view(1, two_f, 1, 1).expand(n, two_f, hh, ww).clone())
            bv, bh = layer.cond_bias(cond)
            self.bv.append(bv)
            self.bh.append(bh)
        # matrices of the per-pixel convolutions: [out, in·kw]
        self.h_w = [layer.h_conv.weight.flatten(1) for layer in model.layers]
        self.o_w = [layer.h_out.weight.flatten(1) for layer in model.layers]

    def pixel(self, i: int, j: int) -> torch.Tensor:
        """Features [N, F] of pixel (i, j): the last horizontal stack there."""
        h = None
        for li, layer in enumerate(self.model.layers):
            p, buf = layer.p, self.h_in[li]
            if li == 0:  # the input row: columns j − p … j − 1, written as pixels are sampled
                if j > 0:
                    buf[:, :, p + j - 1] = self.x[:, :, i, j - 1]
                window = buf[:, :, j:j + p]  # padded index j … j + p − 1 = columns j − p … j − 1
            else:
                buf[:, :, p + j] = h
                window = buf[:, :, j:j + p + 1]  # columns j − p … j
            pre = F.linear(window.flatten(1), self.h_w[li], layer.h_conv.bias) + self.vh[li][:, :, i, j]
            if self.bh[li] is not None:
                pre = pre + self.bh[li]
            out = F.linear(_gate(pre), self.o_w[li], layer.h_out.bias)
            h = out if layer.first else out + h
        return h

    def end_row(self, i: int) -> None:
        """Row i is final: compute row i of every vertical stack and the terms it sends to row i + 1."""
        n, _, hh, ww = self.x.shape
        v_row = self.x[:, :, i:i + 1]  # [N, C, 1, W]
        for li, layer in enumerate(self.model.layers):
            p, buf = layer.p, self.v_in[li]
            buf[:, :, p + i:p + i + 1, p:p + ww] = v_row
            v_pre = layer.v_conv(buf[:, :, i:i + p + 1])  # padded rows i … i + p = rows i − p … i
            if self.bv[li] is not None:
                v_pre = v_pre + self.bv[li][:, :, None, None]
            if i + 1 < hh:
                self.vh[li][:, :, i + 1:i + 2] = layer.v_to_h(v_pre)
            v_row = _gate(v_pre)
            self.h_in[li].zero_()  # a new row starts
