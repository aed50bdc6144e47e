"""PixelRNN (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks", arXiv:1601.06759),
registered as ``pixelrnn``.

The body follows the paper's table of architectures (Table 1, the Row LSTM and Diagonal BiLSTM
columns):

* a **7×7 convolution with mask A** (§3.4): pixel (i, j) sees the rows above and row i left of j,
  never itself. There are no R/G/B channel groups: the head handles the order of the channels within a
  pixel (see :mod:`imagegen.nn.pixel_heads`), so mask A excludes the whole current pixel, and the
  masks of type B that later layers use only have to stop at the current *position*, which by then
  carries information from earlier pixels alone;
* ``num_layers`` **LSTM layers** of one of two kinds (``layer_type``), each with a residual
  connection (§3.3): the layer reads a map of 2h features, its input-to-state convolution produces h
  units per gate, and after the recurrence a 1×1 convolution brings the h hidden units back to 2h
  features, which are added to the layer's input;
* **ReLU → 1×1 convolution** (2h → 2h features); the head's own ReLU → 1×1 convolution is the
  paper's second output layer.

Each LSTM position computes the gates of Eq. 3 from an input-to-state and a state-to-state
convolution, ``[o, f, i, g] = σ(K_ss ⊛ h_prev + K_is ⊛ x)``, ``c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g)``,
``h = σ(o) ⊙ tanh(c)`` (σ the logistic sigmoid for o, f, i and tanh for g).

* **Row LSTM** (§3.1) processes the image row by row from the top, a whole row at once. The
  input-to-state convolution is the k×1 kernel masked type B over the current row, i.e. columns
  j − k//2 … j (implemented as an unmasked 1×(k//2 + 1) convolution), computed for the whole image at
  once; the state-to-state convolution is an unmasked 1×k convolution of the previous row's hidden
  state (k = ``state_kernel_size``). The receptive field of a position is the triangle above it plus
  its row to the left: pixels far to the right in the rows above are out of reach (the paper's
  Figure 4), as expected.
* **Diagonal BiLSTM** (§3.2) skews the map (row i shifted right by i, :func:`skew`: [N, C, H, W] →
  [N, C, H, H + W − 1]) so that each column of the skewed map is one diagonal of the image; the
  input-to-state convolution is 1×1 (mask B), the state-to-state convolution a 2×1 convolution of the
  previous column's hidden state, so the state at (i, j) reads the states at (i, j − 1) and
  (i − 1, j): the whole upper-left quadrant. A second LSTM runs on the horizontally flipped map (the
  upper-right quadrant); its output is flipped back, **shifted down by one row** and added to the
  first direction's, so position (i, j) gets rows < i through it and never a pixel at or after (i, j).

  One departure from the paper closes a blind spot that the shift leaves: without channel groups, the
  pixel at the end of the previous row, (i − 1, W − 1), is visible to (i, j) only through the mask-A
  convolution at positions (i, ≥ W − k//2 − 1), which come after (i, j) for j near the left edge. The
  right-to-left direction of the first LSTM layer therefore also reads the image itself through a
  1×1 convolution: its outputs are shifted down one row, so at (i − 1, ·) it may see every pixel of
  rows ≤ i − 1, the current one included. With it, every position sees every earlier pixel after one
  layer (the complete receptive field the paper claims; the tests check both properties by
  gradients).

Class conditioning (``--conditional``) adds an embedding of the label, through a linear map per
layer, to the gate pre-activations of every LSTM layer, the PixelRNN analogue of the conditional
PixelCNN's bias (van den Oord et al. 2016b, Eq. 4).

The paper's binarised-MNIST model is a 7-layer Diagonal BiLSTM; the defaults here are smaller so
that 28×28 training runs on a CPU. Sampling is naive (the whole body per pixel) for the Diagonal
BiLSTM; the Row LSTM has an incremental sampler (:class:`RowLSTMCache`) that computes one position
per layer and pixel, using that a row's LSTM state no longer changes once the row is sampled.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..registry import register_model
from .autoregressive import AutoregressiveConfig, AutoregressiveModel

LAYER_TYPES = ("row_lstm", "diagonal_bilstm")


@dataclasses.dataclass
class PixelRNNConfig(AutoregressiveConfig):
    layer_type: Literal["row_lstm", "diagonal_bilstm"] = help_field(
        "row_lstm", "LSTM layer: row_lstm (rows top to bottom, triangular context; fast sampling) or "
                    "diagonal_bilstm (diagonals in both directions, complete context)")
    width: int = help_field(32, "h: units per gate of every LSTM; the residual stream between layers has "
                                "2h channels")
    num_layers: int = help_field(4, "LSTM layers (each with a residual connection)")
    first_kernel_size: int = help_field(7, "kernel size of the first (mask A) convolution (odd)")
    state_kernel_size: int = help_field(3, "row_lstm: width k of the input-to-state (masked to "
                                           "k//2 + 1 columns) and state-to-state convolutions (odd)")

    _positive = AutoregressiveConfig._positive + ("width", "num_layers")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer_type not in LAYER_TYPES:
            raise ConfigError(f"layer_type={self.layer_type!r}: use row_lstm or diagonal_bilstm")
        for name in ("first_kernel_size", "state_kernel_size"):
            k = getattr(self, name)
            if k < 3 or k % 2 == 0:
                raise ConfigError(f"{name}={k}: use an odd size ≥ 3")


# ---- shared pieces ------------------------------------------------------------------------------

def lstm_cell(gates: torch.Tensor, c: torch.Tensor, groups: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM update (§3.1, Eq. 3) for ``groups`` independent LSTMs stacked along dim 1.

    Args:
        gates: pre-activations [N, groups·4h, ...], per group in the order o, f, i, g.
        c: previous cell state [N, groups·h, ...].

    Returns:
        (h, c): the new hidden and cell states, [N, groups·h, ...] each.
    """
    n, rest = gates.shape[0], gates.shape[2:]
    o, f, i, g = gates.view(n, groups, 4, -1, *rest).unbind(2)  # [N, groups, h, ...] each
    c = torch.sigmoid(f) * c.view_as(f) + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h.flatten(1, 2), c.flatten(1, 2)


def skew(x: torch.Tensor) -> torch.Tensor:
    """Shift row i of a map right by i (§3.2, Figure 3): [N, C, H, W] → [N, C, H, H + W − 1], zeros
    elsewhere; ``skew(x)[:, :, i, i + j] = x[:, :, i, j]``."""
    n, c, hh, ww = x.shape
    flat = F.pad(x, (0, hh)).flatten(2)  # rows of length W + H, row i starting at i·(W + H)
    return flat[:, :, :hh * (ww + hh - 1)].view(n, c, hh, ww + hh - 1)  # rows re-cut one shorter


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`skew`: [N, C, H, H + W − 1] → [N, C, H, W] with ``width`` = W."""
    n, c, hh, sw = x.shape
    flat = F.pad(x.flatten(2), (0, hh))  # rows of length H + W − 1 re-cut one longer
    return flat.view(n, c, hh, sw + 1)[..., :width]


class MaskedConv2d(nn.Conv2d):
    """k×k convolution with mask A (§3.4): output (i, j) reads rows i − k//2 … i − 1 (all k columns) and
    row i's columns j − k//2 … j − 1, never (i, j) itself.

    Args:
        in_channels, out_channels: channels.
        kernel_size: k (odd).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        p = kernel_size // 2
        mask = torch.ones(kernel_size, kernel_size)
        mask[p, p:] = 0  # the centre and the rest of its row
        mask[p + 1:] = 0  # the rows below
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C_in, H, W] → [N, C_out, H, W]."""
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


# ---- the two LSTM layers ------------------------------------------------------------------------

class RowLSTMLayer(nn.Module):
    """A Row LSTM layer with its residual connection (§3.1, §3.3).

    Args:
        width: h; the layer maps 2h features to 2h features.
        kernel_size: k (odd): the input-to-state convolution reads columns j − k//2 … j of the current
            row (mask B), the state-to-state one columns j − k//2 … j + k//2 of the previous row.
        cond_dim: size of the conditioning vector (0 = unconditional).
    """

    def __init__(self, width: int, kernel_size: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.p = kernel_size // 2
        self.input_to_state = nn.Conv2d(2 * width, 4 * width, (1, self.p + 1))
        self.state_to_state = nn.Conv1d(width, 4 * width, kernel_size, padding=self.p, bias=False)
        self.out = nn.Conv2d(width, 2 * width, 1)
        self.cond = nn.Linear(cond_dim, 4 * width, bias=False) if cond_dim else None

    def input_gates(self, s: torch.Tensor, cond: Optional[torch.Tensor]) -> torch.Tensor:
        """Input-to-state pre-activations of every position: s [N, 2h, H, W] → [N, 4h, H, W]."""
        pre = self.input_to_state(F.pad(s, (self.p, 0, 0, 0)))  # columns j − p … j
        if self.cond is not None and cond is not None:
            pre = pre + self.cond(cond)[:, :, None, None]
        return pre

    def forward(self, s: torch.Tensor, cond: Optional[torch.Tensor] = None,
                x_in: Optional[torch.Tensor] = None) -> torch.Tensor:
        """s [N, 2h, H, W] → [N, 2h, H, W]; ``x_in`` is unused (the signature of
        :meth:`DiagonalBiLSTMLayer.forward`)."""
        n, _, hh, ww = s.shape
        pre = self.input_gates(s, cond)  # [N, 4h, H, W]
        width = self.out.in_channels
        h = s.new_zeros(n, width, ww)  # [N, h, W], the state of the row above row 0
        c = torch.zeros_like(h)
        rows = []
        for pre_i in pre.unbind(2):  # one backward for all rows (indexing row i would cost a full map each)
            h, c = lstm_cell(pre_i + self.state_to_state(h), c)  # [N, h, W]
            rows.append(h)
        return s + self.out(torch.stack(rows, 2))  # [N, 2h, H, W]


class DiagonalBiLSTMLayer(nn.Module):
    """A Diagonal BiLSTM layer with its residual connection (§3.2, §3.3).

    Both directions run in one loop over the columns of the skewed map, as two groups of channels:
    ``[left-to-right | right-to-left]``.

    Args:
        width: h; the layer maps 2h features to 2h features.
        pixel_channels: C if the right-to-left direction also reads the image (the first layer,
            see the module docstring), else 0.
        cond_dim: size of the conditioning vector (0 = unconditional).
    """

    def __init__(self, width: int, pixel_channels: int = 0, cond_dim: int = 0) -> None:
        super().__init__()
        self.input_to_state = nn.Conv2d(2 * width, 2 * 4 * width, 1)  # [left 4h | right 4h]
        self.pixel_to_state = nn.Conv2d(pixel_channels, 4 * width, 1, bias=False) if pixel_channels else None
        # a 2×1 column convolution per direction (groups: each reads only its own states)
        self.state_to_state = nn.Conv1d(2 * width, 2 * 4 * width, 2, groups=2, bias=False)
        self.out = nn.Conv2d(width, 2 * width, 1)
        self.cond = nn.Linear(cond_dim, 2 * 4 * width, bias=False) if cond_dim else None

    def forward(self, s: torch.Tensor, cond: Optional[torch.Tensor] = None,
                x_in: Optional[torch.Tensor] = None) -> torch.Tensor:
        """s [N, 2h, H, W] (and the image x_in [N, C, H, W] if the layer reads it) → [N, 2h, H, W]."""
        n, _, hh, ww = s.shape
        width = self.out.in_channels
        pre = self.input_to_state(s)  # [N, 8h, H, W]
        if self.cond is not None and cond is not None:
            pre = pre + self.cond(cond)[:, :, None, None]
        left, right = pre.chunk(2, 1)  # [N, 4h, H, W] each
        if self.pixel_to_state is not None:
            right = right + self.pixel_to_state(x_in)  # allowed: the right output is shifted down
        pre = skew(torch.cat([left, right.flip(-1)], 1))  # [N, 8h, H, H + W − 1]
        h = s.new_zeros(n, 2 * width, hh)  # [N, 2h, H]: one column of both directions' states
        c = torch.zeros_like(h)
        cols = []
        for pre_t in pre.unbind(-1):  # the columns of the skewed map, [N, 8h, H] each
            # the state at skewed (i, t) reads (i − 1, t − 1) and (i, t − 1): (i − 1, j) and (i, j − 1)
            gates = pre_t + self.state_to_state(F.pad(h, (1, 0)))  # [N, 8h, H]
            h, c = lstm_cell(gates, c, groups=2)  # [N, 2h, H]
            cols.append(h)
        out = unskew(torch.stack(cols, -1), ww)  # [N, 2h, H, W]
        left, right = out.chunk(2, 1)  # [N, h, H, W] each
        right = F.pad(right.flip(-1), (0, 0, 1, 0))[:, :, :hh]  # row i gets row i − 1 (zeros in row 0)
        return s + self.out(left + right)  # [N, 2h, H, W]


# ---- the model ----------------------------------------------------------------------------------

@register_model("pixelrnn")
class PixelRNN(AutoregressiveModel):
    """PixelRNN with Row LSTM or Diagonal BiLSTM layers and optional class conditioning (see the
    module docstring).

    Python API::

        from imagegen.sampling import load_run, generate
        model = load_run("runs/mnist-pixelrnn")
        img = generate(model, 16, seed=0)                      # [16, 1, 28, 28] in [-1, 1]
        logp = model.log_prob(model.likelihood_targets(x))     # exact log p(x), nats per image
        done = model.complete(x, known=top_half_mask)          # keep the top half, sample the rest
    """

    Config = PixelRNNConfig

    def __init__(self, config: PixelRNNConfig) -> None:
        super().__init__(config)
        c, h = config.channels or 1, config.width
        cond_dim = self.build_label_embedding(h)
        self.first = MaskedConv2d(c, 2 * h, config.first_kernel_size)
        if config.layer_type == "row_lstm":
            layers = [RowLSTMLayer(h, config.state_kernel_size, cond_dim) for _ in range(config.num_layers)]
        else:
            layers = [DiagonalBiLSTMLayer(h, c if i == 0 else 0, cond_dim) for i in range(config.num_layers)]
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(2 * h, 2 * h, 1)
        self.build_head(2 * h)

    def body(self, x_in: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        cond = self.label_vectors(labels)
        s = self.first(x_in)  # [N, 2h, H, W]
        for layer in self.layers:
            s = layer(s, cond, x_in)  # [N, 2h, H, W]
        return self.out(F.relu(s))  # [N, 2h, H, W]

    def fast_sampler(self, x: torch.Tensor, labels: Optional[torch.Tensor]) -> Optional["RowLSTMCache"]:
        if self.config.layer_type != "row_lstm":
            return None
        return RowLSTMCache(self, x, self.label_vectors(labels))


class RowLSTMCache:
    """Incremental evaluation of a Row LSTM :class:`PixelRNN`'s body during sampling.

    Once row i − 1 is sampled, every layer's LSTM state (h, c) of that row is final, and so is the
    state-to-state term it sends to row i. :meth:`end_row` computes that term (one 1×k convolution
    per layer); :meth:`pixel` then computes position (i, j) alone in every layer: the mask-A window of
    the image, the input-to-state window (columns j − k//2 … j of the layer's input row, kept as the
    row is sampled), one LSTM update, the 1×1 convolutions. The arithmetic is the one of
    :meth:`PixelRNN.body` on the same windows; tests check that sampling with and without the cache
    gives identical images.

    Args:
        model: the PixelRNN (Row LSTM, in eval mode).
        x: network-scale images [N, C, H, W], filled in place by the sampling loop.
        cond: conditioning vectors [N, h] or None.
    """

    def __init__(self, model: PixelRNN, x: torch.Tensor, cond: Optional[torch.Tensor]) -> None:
        self.model, self.x = model, x
        n, _, hh, ww = x.shape
        first = model.first
        self.k = first.kernel_size[0]
        p = self.k // 2
        # mask A has no weight below row p: keep the top p + 1 rows, as a matrix [2h, C·(p + 1)·k]
        self.first_w = (first.weight * first.mask)[:, :, :p + 1].flatten(1)
        self.s_in, self.ss, self.c, self.bias = [], [], [], []
        for layer in model.layers:
            width = layer.out.in_channels
            self.s_in.append(x.new_zeros(n, 2 * width, ww + layer.p))  # the current row, padded on the left
            self.ss.append(layer.state_to_state(x.new_zeros(n, width, ww)))  # [N, 4h, W]: row −1 is zero
            self.c.append(x.new_zeros(n, width, ww))  # cell states of the previous row …
            self.bias.append(layer.cond(cond) if layer.cond is not None and cond is not None else None)
        self.h_row = [x.new_zeros(n, layer.out.in_channels, ww) for layer in model.layers]  # … and this row
        self.c_row = [torch.zeros_like(h) for h in self.h_row]
        self.is_w = [layer.input_to_state.weight.flatten(1) for layer in model.layers]
        self.out_w = [layer.out.weight.flatten(1) for layer in model.layers]
        self.final_w = model.out.weight.flatten(1)

    def pixel(self, i: int, j: int) -> torch.Tensor:
        """Features [N, 2h] of pixel (i, j), equal to ``body(x)[:, :, i, j]``."""
        p = self.k // 2
        lo = max(i - p, 0)
        rows = F.pad(self.x[:, :, lo:i + 1], (p, p, p - (i - lo), 0))  # [N, C, p + 1, W + 2p]
        window = rows[..., j:j + self.k]  # rows i − p … i, columns j − p … j + p
        s = F.linear(window.flatten(1), self.first_w, self.model.first.bias)  # [N, 2h]
        for li, layer in enumerate(self.model.layers):
            buf = self.s_in[li]
            buf[:, :, layer.p + j] = s
            pre = F.linear(buf[:, :, j:j + layer.p + 1].flatten(1), self.is_w[li],
                           layer.input_to_state.bias)  # columns j − p … j: [N, 4h]
            if self.bias[li] is not None:
                pre = pre + self.bias[li]
            h, c = lstm_cell(pre + self.ss[li][:, :, j], self.c[li][:, :, j])  # [N, h]
            self.h_row[li][:, :, j], self.c_row[li][:, :, j] = h, c
            s = s + F.linear(h, self.out_w[li], layer.out.bias)  # [N, 2h]
        return F.linear(F.relu(s), self.final_w, self.model.out.bias)

    def end_row(self, i: int) -> None:
        """Row i is final: its LSTM states become the previous row's, and their state-to-state terms
        are computed for row i + 1."""
        for li, layer in enumerate(self.model.layers):
            self.ss[li] = layer.state_to_state(self.h_row[li])  # [N, 4h, W]
            self.c[li] = self.c_row[li]
            self.h_row[li] = torch.zeros_like(self.h_row[li])
            self.c_row[li] = torch.zeros_like(self.c_row[li])
            self.s_in[li].zero_()  # a new row starts
