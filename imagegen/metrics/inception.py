"""The FID Inception-v3, written without torchvision.

Which network this is, exactly: the Inception-v3 graph of TensorFlow's
``inception-2015-12-05.tgz`` that the original FID code (bioinf-jku/TTUR) and the original Inception
Score code use, as ported to PyTorch by pytorch-fid (mseitzer/pytorch-fid, file
``pt_inception-2015-12-05-6726825d.pth``). It differs from torchvision's ImageNet Inception-v3 in its
weights, in 1008 output classes, and in the pooling branches of the mixed blocks:
``Mixed_5b-d`` (FIDInceptionA), ``Mixed_6b-e`` (FIDInceptionC) and ``Mixed_7b`` (FIDInceptionE_1) use
3x3 average pooling that excludes the zero padding (``count_include_pad=False``, as TensorFlow), and
``Mixed_7c`` (FIDInceptionE_2) uses 3x3 max pooling. Module and parameter names equal pytorch-fid's
(which are torchvision's), so its weights file loads as is.

Input path (the one of pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)``):
images in [-1, 1] (grayscale repeated to 3 channels, like PIL's ``convert("RGB")``) are resized to
299 x 299 with ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` without
antialiasing, then fed to the network. pytorch-fid resizes [0, 1] images and then maps them to
[-1, 1]; both maps are affine, so the order does not matter. Features are the 2048-d output of the
final average pool (``pool3``). FID values are therefore comparable with pytorch-fid's (and with
numbers computed on the same uint8 images by it); they differ slightly from the TensorFlow original
and from torch-fidelity/torchmetrics (which emulate TensorFlow's resize) and from clean-fid (PIL
bicubic resize). Generated images are quantised to uint8 levels before feature extraction (see
:mod:`imagegen.metrics.evaluate`), as if they had been saved as PNGs.

IS logits: ``pool3 @ fc.weight.T`` over all 1008 classes, without the fc bias, as in the original TF
Inception Score code (and torch-fidelity's ``logits_unbiased``).

Cost: about 5.7 GFLOPs per image at 299 x 299, i.e. about 8 images/s on 2 CPU cores (some 20 minutes
per 10,000 images; the reference set's features are cached after the first run).
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ImagegenError
from ..weights import INCEPTION, download_weights, find_weights, locate_weights, weights_sha256
from .extractors import FeatureExtractor, register_extractor

# The weights file is found / downloaded by imagegen.weights (spec INCEPTION); these names remain for callers.
FID_WEIGHTS_FILE = INCEPTION.filename
FID_WEIGHTS_URL = INCEPTION.url
#: The file name carries the first hex digits of the file's SHA-256 (torch.hub's naming convention).
FID_WEIGHTS_SHA256_PREFIX = INCEPTION.sha256
WEIGHTS_ENV = INCEPTION.env_var

VARIANT = ("pytorch-fid FID Inception-v3 (TF inception-2015-12-05 weights; FIDInceptionA/C/E_1/E_2 "
           "pooling; 1008 classes)")
RESIZE_DESCRIPTION = ("bilinear to 299x299 (torch.nn.functional.interpolate, align_corners=False, "
                      "no antialias), as pytorch-fid")


class BasicConv2d(nn.Module):
    """Conv (no bias) -> batch norm (eps 1e-3, as TF) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, **conv: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **conv)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3/1 average pooling that ignores the zero padding, like TensorFlow's."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (FIDInceptionA): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], dim=1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (``Mixed_6a``): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionC(nn.Module):
    """17x17 block (FIDInceptionC) with factorised 7x7 convolutions."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))], dim=1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (``Mixed_7a``)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """8x8 block with expanded filter banks. ``pool="avg"``: FIDInceptionE_1 (``Mixed_7b``, average
    pooling without padding); ``pool="max"``: FIDInceptionE_2 (``Mixed_7c``, max pooling)."""

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], dim=1)
        pooled = _tf_avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], dim=1)


class FIDInceptionV3(FeatureExtractor):
    """The FID Inception-v3 (see the module docstring for the exact variant and input path).

    ``forward(img)`` takes float32 [N, C, H, W] in [-1, 1] (C = 1 or 3, any H, W) and returns
    (features float32 [N, 2048] ``pool3``, logits float32 [N, 1008] without bias, for IS).

    Args:
        weights_sha256: SHA-256 of the weights file (recorded in the protocol).
    """

    name = "inception"
    feature_dim = 2048
    num_logits = 1008

    def __init__(self, weights_sha256: str = "") -> None:
        super().__init__()
        self.weights_sha256 = weights_sha256
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        elif img.shape[1] != 3:
            raise ImagegenError(f"Inception takes 1- or 3-channel images, got {img.shape[1]} channels")
        x = F.interpolate(img, size=(299, 299), mode="bilinear", align_corners=False)  # [N, 3, 299, 299]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # [N, 64, 147, 147]
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # [N, 64, 73, 73]
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # [N, 192, 71, 71]
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # [N, 192, 35, 35]
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # [N, 288, 35, 35]
        x = self.Mixed_6a(x)  # [N, 768, 17, 17]
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # [N, 768, 17, 17]
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # [N, 2048, 8, 8]
        features = x.mean(dim=(2, 3))  # [N, 2048] pool3
        logits = features @ self.fc.weight.T  # [N, 1008], no bias (original IS code)
        return features, logits

    @property
    def weights_hash(self) -> str:
        return self.weights_sha256

    def protocol(self) -> dict[str, Any]:
        return {"name": self.name, "variant": VARIANT, "weights_sha256": self.weights_sha256,
                "standard_weights": INCEPTION.matches(self.weights_sha256) if self.weights_sha256 else False,
                "feature_dim": self.feature_dim, "input_size": 299, "resize": RESIZE_DESCRIPTION,
                "is_logits": "pool3 @ fc.weight^T, 1008 classes, no bias"}


def load_fid_inception(path: str | os.PathLike) -> FIDInceptionV3:
    """Load the FID Inception from a pytorch-fid weights file (``torch.load(weights_only=True)``).

    Args:
        path: a ``.pth`` state dict with pytorch-fid's key names and shapes. BatchNorm
            ``num_batches_tracked`` entries may be present or absent.

    Returns:
        The network in eval mode on the CPU. A file whose SHA-256 does not start with
        ``6726825d`` loads, but its protocol says ``standard_weights: false`` and a warning is printed
        to stderr (numbers are then not comparable with published FIDs).

    Raises:
        ImagegenError: unreadable file, not a state dict, missing/unexpected keys or wrong shapes.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or non-weights files
        raise ImagegenError(f"cannot read Inception weights {path}: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ImagegenError(f"{path} is not a state dict of tensors; expected pytorch-fid's {FID_WEIGHTS_FILE}")
    model = FIDInceptionV3()
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    got = {k for k in state if not k.endswith("num_batches_tracked")}
    if expected != got:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise ImagegenError(f"{path} does not match the FID Inception: {len(missing)} missing keys "
                            f"{missing[:3]}, {len(extra)} unexpected keys {extra[:3]}")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise ImagegenError(f"{path}: wrong tensor shapes for the FID Inception: "
                            f"{str(e).splitlines()[-1].strip()}") from None
    sha = weights_sha256(path)
    model.weights_sha256 = sha
    if not INCEPTION.matches(sha):
        print(f"warning: {path} is not the standard FID Inception file (sha256 {sha[:12]}..., expected "
              f"{FID_WEIGHTS_SHA256_PREFIX}...); FIDs are not comparable with published ones", file=sys.stderr)
    return model.eval()


def find_inception_weights(path: Optional[str | os.PathLike] = None,
                           cache: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """Locate the weights file: ``path`` if given, else ``$IMAGEGEN_INCEPTION_WEIGHTS``, else
    ``<cache>/weights/pt_inception-2015-12-05-6726825d.pth`` if present, else None
    (:func:`imagegen.weights.locate_weights` for :data:`imagegen.weights.INCEPTION`).

    Raises:
        WeightsError: an explicitly given path (argument or variable) does not exist.
    """
    return locate_weights(INCEPTION, path, cache)


def download_inception_weights(cache: Optional[str | os.PathLike] = None, *, url: str = FID_WEIGHTS_URL,
                               timeout_seconds: float = 30.0) -> Path:
    """Download pytorch-fid's weights into ``<cache>/weights/`` and verify the SHA-256 prefix
    (:func:`imagegen.weights.download_weights`; ``url`` overrides the source, e.g. a mirror).

    Raises:
        WeightsError: no network, HTTP error, or a checksum mismatch (the download is deleted).
    """
    spec = INCEPTION if url == INCEPTION.url else dataclasses.replace(INCEPTION, url=url)
    return download_weights(spec, cache, timeout=timeout_seconds)


@register_extractor("inception")
def build_inception(weights: Optional[str | os.PathLike] = None, cache: Optional[str | os.PathLike] = None,
                    download: bool = False) -> FIDInceptionV3:
    """Registry factory: load the FID Inception from ``weights`` / ``$IMAGEGEN_INCEPTION_WEIGHTS`` / the
    cache, downloading it (checksum verified) if ``download`` and it is nowhere local
    (:func:`imagegen.weights.find_weights`).

    Raises:
        WeightsError: no weights available (one line: the file, its URL, where to put it), or the
            download failed.
        ImagegenError: a bad weights file.
    """
    return load_fid_inception(find_weights(INCEPTION, weights, cache, download=download))
