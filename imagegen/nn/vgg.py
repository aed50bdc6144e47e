"""VGG-19 feature encoder (Simonyan & Zisserman 2015, configuration "E") for style transfer and
perceptual losses.

The module layout is torchvision's ``vgg19().features`` index for index (conv ``features.0``, ReLU
``features.1``, ..., last max pool ``features.36``), so the PyTorch model-zoo file
``vgg19-dcbb9e9d.pth`` (keys ``features.N.weight`` / ``features.N.bias``; its ``classifier.*`` keys are
ignored) loads into :attr:`VGG19Encoder.features` strictly. Activations are named after the paper's
layers: ``conv{block}_{i}``, ``relu{block}_{i}`` and ``pool{block}``.

Three sources of weights (:func:`load_vgg19`):

* ``imagenet``: the model-zoo file, found by :func:`imagegen.weights.find_weights` (explicit path,
  ``$IMAGEGEN_VGG19_WEIGHTS``, the cache, then a download), refused unless its SHA-256 starts with the
  model zoo's ``dcbb9e9d`` (:func:`imagegen.weights.verify_weights`), and read with
  ``torch.load(weights_only=True)``, so loading never runs pickled code;
* a path: the same, from that file, with the widths it has (:func:`vgg19_file_widths`): the model-zoo
  file, or a narrower encoder the toolkit trained itself (``imagegen train-encoder``,
  :mod:`imagegen.style.encoder_training`);
* ``random``: Kaiming-normal weights (He et al. 2015, fan-in, ReLU gain: std = sqrt(2 / (9 C_in))) and
  zero biases, drawn from a fixed seed; He et al. 2016 ("A Powerful Generative Model Using Random Weights
  for the Deep Image Representation") and Ustyuzhaninov et al. 2017 ("What does it take to generate
  natural textures?") report usable textures from random networks. This scaling keeps the activations'
  second moment roughly constant from layer to layer, so every layer's losses are of similar size.

Every encoder is frozen (``requires_grad=False``) and in eval mode.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..weights import VGG19, find_weights, locate_weights, verify_weights, weights_dir

#: torchvision's VGG-19 (configuration "E"): conv widths per block; each block ends with a 2×2 pool.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
#: the standard conv widths of the five blocks (the model-zoo file has these)
VGG19_WIDTHS = (64, 128, 256, 512, 512)

#: ImageNet channel statistics of torchvision's models (RGB, images in [0, 1])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

POOLINGS = ("max", "avg")
#: border handling of the 3×3 convolutions: ``zeros`` (VGG's own, torchvision's, what the ImageNet weights
#: were trained with) or ``reflect`` (what the AdaIN reference encoder uses)
PADDINGS = ("zeros", "reflect")
#: file name of the self-trained encoder (``imagegen train-encoder``'s default output) in the weights cache,
#: which ``auto`` uses when the ImageNet file is not found
SELF_TRAINED_FILENAME = "vgg19-selftrained.pth"
WEIGHT_SOURCES = ("imagenet", "random", "auto")


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, n in enumerate(VGG19_BLOCKS, start=1):
        for i in range(1, n + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


#: name of each module of ``features``, by index: ``LAYERS[0] == "conv1_1"``, ``LAYERS[36] == "pool5"``
LAYERS: tuple[str, ...] = _layer_names()
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYERS)}


def layer_index(name: str) -> int:
    """Index in ``features`` of the layer called ``name`` (``relu4_2`` → 22).

    Raises:
        ConfigError: unknown name (the message lists the ReLU layers).
    """
    if name not in LAYER_INDEX:
        relus = ", ".join(n for n in LAYERS if n.startswith("relu"))
        raise ConfigError(f"unknown VGG-19 layer {name!r}; use one of {relus} (or conv*/pool*)")
    return LAYER_INDEX[name]


def pools_before(name: str) -> int:
    """How many 2×2 poolings the input goes through before layer ``name`` (relu5_1 → 4); the smallest
    image that reaches it is :func:`min_image_size`."""
    return sum(1 for n in LAYERS[:layer_index(name)] if n.startswith("pool"))


def min_image_size(name: str, padding: str = "zeros") -> int:
    """The smallest image side (pixels) that reaches layer ``name``: ``2 ** pools_before(name)``, doubled
    with ``reflect`` padding (the deepest convolution's input must be at least 2×2 to reflect).

    Raises:
        ConfigError: unknown layer ``name`` or ``padding`` not one of :data:`PADDINGS`.
    """
    return 2 ** (pools_before(name) + (check_padding(padding) == "reflect"))


def self_trained_path(cache_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Where ``imagegen train-encoder`` writes by default and ``auto`` looks: ``<weights cache>/``
    :data:`SELF_TRAINED_FILENAME` (the cache: ``$IMAGEGEN_CACHE`` or ``~/.cache/imagegen``)."""
    return weights_dir(cache_dir) / SELF_TRAINED_FILENAME


def resolve_auto(cache_dir: Optional[Union[str, os.PathLike]] = None) -> str:
    """What ``auto`` means on this machine: ``imagenet`` if the model-zoo file is found locally (never
    downloaded), else the self-trained encoder's path if :func:`self_trained_path` exists, else ``random``."""
    if locate_weights(VGG19, cache_dir=cache_dir) is not None:
        return "imagenet"
    own = self_trained_path(cache_dir)
    return str(own) if own.is_file() else "random"


class VGG19Encoder(nn.Module):
    """VGG-19 convolutional layers returning named activations.

    Args:
        widths: conv widths of the five blocks; the standard (64, 128, 256, 512, 512) is needed to load
            the model-zoo file; narrower ones are for tests and experiments with random weights.
        pooling: ``max`` (the trained network's, torchvision's) or ``avg`` (2×2 average pooling, which
            Gatys et al. 2016, §2, prefer for image synthesis); :meth:`forward` can override it per call.
        device: where the conv weights are created; ``meta`` builds the modules without initialising
            weights that are about to be replaced (:func:`load_vgg19` does this).
        padding: ``zeros`` (default; VGG's own 1-pixel zero padding, as torchvision's model and the ImageNet
            weights were trained) or ``reflect`` (1-pixel reflection padding, the encoder of Huang &
            Belongie's AdaIN implementation, whose ``vgg_normalised`` puts ``ReflectionPad2d(1)`` before
            every 3×3 conv). The weights' layout is the same either way.

    Attributes:
        features: ``nn.Sequential`` with torchvision's indices (see :data:`LAYERS`).
        source: a short description of where the weights came from, and the padding if it is not VGG's
            zeros (for logs and protocols).
        weights_path: the weights file, or None for random weights.
    """

    def __init__(self, widths: Sequence[int] = VGG19_WIDTHS, pooling: str = "max",
                 device: Optional[Union[str, torch.device]] = None, padding: str = "zeros") -> None:
        super().__init__()
        self.widths = parse_widths(widths, len(VGG19_BLOCKS), what=f"VGG-19 widths {tuple(widths)}",
                                   example=",".join(map(str, VGG19_WIDTHS)))
        self.pooling = check_pooling(pooling)
        self.padding = check_padding(padding)
        layers: list[nn.Module] = []
        c_in = 3
        for n, width in zip(VGG19_BLOCKS, self.widths):
            for _ in range(n):
                # ReLU not in place: a returned conv activation must not be overwritten
                layers += [nn.Conv2d(c_in, width, 3, padding=1, padding_mode=self.padding, device=device), nn.ReLU()]
                c_in = width
            layers.append(nn.MaxPool2d(2, 2))  # swapped for average pooling in forward when asked
        self.features = nn.Sequential(*layers)
        # not persistent: the state dict is exactly torchvision's features.* keys
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.source = "untrained"
        self.weights_path: Optional[Path] = None

    def normalize(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1] → [0, 1] → ImageNet mean/std normalised (torchvision's input)."""
        return ((img + 1) * 0.5 - self.mean) / self.std

    def forward(self, img: torch.Tensor, layers: Union[str, Iterable[str]],
                pooling: Optional[str] = None) -> dict[str, torch.Tensor]:
        """Activations of the named layers; the network runs only up to the deepest one.

        Args:
            img: [N, 3, H, W] float in [-1, 1] (RGB).
            layers: one layer name or several (see :data:`LAYERS`, e.g. ``relu4_2``).
            pooling: ``max`` or ``avg`` for this call (default: the encoder's own).

        Returns:
            ``{name: [N, C_l, H / 2^p, W / 2^p]}`` (``p``: poolings before the layer, sizes floored).

        Raises:
            ConfigError: unknown layer name or pooling; an image too small for the deepest layer.
        """
        names = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
        if img.ndim != 4 or img.shape[1] != 3:
            raise ConfigError(f"VGG-19 expects RGB images [N, 3, H, W], got {tuple(img.shape)}")
        wanted = {layer_index(n): n for n in names}
        if not wanted:
            return {}
        last = max(wanted)
        need = min_image_size(LAYERS[last], self.padding)
        if min(img.shape[-2:]) < need:
            raise ConfigError(f"image {img.shape[-1]}x{img.shape[-2]} (width x height) is too small for VGG-19 layer "
                              f"{LAYERS[last]}{' with reflection padding' if self.padding == 'reflect' else ''}: "
                              f"it needs at least {need} pixels per side")
        avg = check_pooling(pooling or self.pooling) == "avg"
        x = self.normalize(img)
        out: dict[str, torch.Tensor] = {}
        for i in range(last + 1):
            module = self.features[i]
            x = F.avg_pool2d(x, 2, 2) if avg and isinstance(module, nn.MaxPool2d) else module(x)
            if i in wanted:
                out[wanted[i]] = x
        return {n: out[n] for n in names}

    def freeze(self) -> "VGG19Encoder":
        """No gradients for the weights, eval mode; returns self."""
        self.requires_grad_(False)
        return self.eval()


def check_pooling(pooling: str) -> str:
    """``pooling`` if it is ``max`` or ``avg``; else ConfigError."""
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling {pooling!r}: use max or avg")
    return pooling


def check_padding(padding: str) -> str:
    """``padding`` if it is ``zeros`` or ``reflect``; else ConfigError."""
    if padding not in PADDINGS:
        raise ConfigError(f"padding {padding!r}: use zeros or reflect")
    return padding


def random_init_(encoder: VGG19Encoder, seed: int = 0) -> VGG19Encoder:
    """Kaiming-normal conv weights (fan-in, ReLU gain), zero biases, drawn on the CPU from a generator
    seeded with ``seed`` (the same weights on every machine); the parameters are replaced (so ``encoder``
    may have been built on the meta device); returns ``encoder``."""
    gen = torch.Generator().manual_seed(int(seed))
    for module in encoder.features:
        if isinstance(module, nn.Conv2d):
            w = torch.empty(module.weight.shape)
            nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=gen)
            module.weight = nn.Parameter(w)
            module.bias = nn.Parameter(torch.zeros(module.bias.shape))
    return encoder


@torch.no_grad()
def normalize_filters_(encoder: VGG19Encoder, images: Iterable[torch.Tensor]) -> dict[str, Any]:
    """Gatys et al.'s network normalisation (Gatys, Ecker & Bethge 2016, §2: "We normalized the network
    by scaling the weights such that the mean activation of each convolutional filter over images and
    positions is equal to one"), in place; the official AdaIN encoder, ``vgg_normalised``, is the ImageNet
    VGG-19 normalised this way.

    Every conv filter's weights and bias are divided by ``m``, the mean of its ReLU activation over
    ``images`` and all positions, and the next convolution's input weights for that channel are
    multiplied by ``m``: every ReLU layer's channels then have mean activation 1 on these images, and
    what each layer computes from the one before is unchanged up to those per-channel factors (ReLU,
    max or average pooling and zero or reflection padding all commute with a positive per-channel
    scale). Filters that never fire on the images (``m = 0``) are left alone. Every ``m`` comes from the
    network before the call (the compensation makes each layer's input what it was), so one pass suffices.

    Why it matters: style losses compare per-channel statistics (AdaIN's means and standard deviations,
    Gatys' Gram matrices) summed over channels, so without it the channels that happen to have large
    activations dominate the loss. (A network trained with batch normalisation, such as the self-trained
    encoder, is close to normalised already: its channel means sit near 1/√(2π) ≈ 0.4.)

    Args:
        encoder: the encoder to change (the conv weights and biases of its ``features``).
        images: batches [N, 3, H, W] float32 in [-1, 1], each side at least
            ``min_image_size("relu5_4", encoder.padding)`` (16 pixels; 32 with reflection padding).

    Returns:
        ``{"images": count, "layers": {relu name: {"mean_min", "mean_median", "mean_max", "dead"}}}``: the
        channel means before the normalisation (for the record).

    Raises:
        ConfigError: no images, or images too small for relu5_4.
    """
    relus = [n for n in LAYERS if n.startswith("relu")]
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for batch in images:
        feats = encoder(batch, relus)
        for n in relus:
            total = feats[n].float().mean(dim=(2, 3)).sum(0)  # per-channel means, summed over the batch
            sums[n] = total if n not in sums else sums[n] + total
        count += batch.shape[0]
    if count == 0:
        raise ConfigError("normalize_filters_ needs at least one image batch")
    convs = [m for m in encoder.features if isinstance(m, nn.Conv2d)]
    record: dict[str, Any] = {"images": count, "layers": {}}
    for k, (name, conv) in enumerate(zip(relus, convs)):
        m = sums[name] / count
        alive = m > 0
        scale = torch.where(alive, m, torch.ones_like(m))
        conv.weight.data.div_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
        conv.bias.data.div_(scale.to(conv.bias.dtype))
        if k + 1 < len(convs):
            convs[k + 1].weight.data.mul_(scale.view(1, -1, 1, 1).to(convs[k + 1].weight.dtype))
        record["layers"][name] = {"mean_min": float(m.min()), "mean_median": float(m.median()),
                                  "mean_max": float(m.max()), "dead": int((~alive).sum())}
    return record


def _short(keys: Sequence[str], n: int = 3) -> str:
    keys = sorted(keys, key=lambda k: (len(k), k))
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def read_vgg19_file(path: Union[str, os.PathLike]) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``torch.load(weights_only=True)`` (never runs pickled code).

    Raises:
        ConfigError: the file cannot be read, or is not a dict of tensors (one line naming the file).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle/zip/IO errors of every kind become one line
        msg = " ".join(str(e).split())[:200] or type(e).__name__
        raise ConfigError(f"cannot read VGG-19 weights {path}: {msg} (expected a PyTorch state dict such as "
                          f"{VGG19.filename})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in state.items()):
        raise ConfigError(f"VGG-19 weights {path}: not a state dict of tensors (expected torchvision's vgg19 "
                          f"layout, as in {VGG19.filename})")
    return state


#: index in ``features`` of the first conv of each of the five blocks (0, 5, 10, 19, 28)
BLOCK_FIRST_CONV = tuple(layer_index(f"conv{b}_1") for b in range(1, 6))


def state_widths(state: dict[str, torch.Tensor]) -> Optional[tuple[int, ...]]:
    """The five block widths of a torchvision-layout VGG-19 state dict (output channels of
    ``features.{0,5,10,19,28}.weight``), or None if one of those 4-D weights is missing."""
    widths = []
    for i in BLOCK_FIRST_CONV:
        w = state.get(f"features.{i}.weight")
        if not isinstance(w, torch.Tensor) or w.ndim != 4:
            return None
        widths.append(int(w.shape[0]))
    return tuple(widths)


def vgg19_file_widths(path: Union[str, os.PathLike]) -> tuple[int, ...]:
    """The five block widths of the torchvision-layout VGG-19 file ``path``: (64, 128, 256, 512, 512) for
    the model-zoo file, others for an encoder written by ``imagegen train-encoder``
    (:mod:`imagegen.style.encoder_training`).

    Raises:
        ConfigError: unreadable file, or one without those conv weights.
    """
    widths = state_widths(read_vgg19_file(path))
    if widths is None:
        raise ConfigError(f"VGG-19 weights {path} do not have torchvision's vgg19 layout: missing keys among "
                          f"features.{{{','.join(map(str, BLOCK_FIRST_CONV))}}}.weight (expected features.0 ... "
                          f"features.34 conv weights/biases, as in {VGG19.filename})")
    return widths


def load_vgg19_state_dict(encoder: VGG19Encoder, path: Union[str, os.PathLike]) -> VGG19Encoder:
    """Load a torchvision-layout VGG-19 state dict (``features.*``; ``classifier.*`` ignored) from
    ``path`` into ``encoder`` (strictly), reading it with ``torch.load(weights_only=True)``.

    Raises:
        ConfigError: the file cannot be read as a weights-only state dict, or has the wrong layout
            (one line naming missing, unexpected or mis-shaped keys).
    """
    path = Path(path)
    return _load_state(encoder, read_vgg19_file(path), path)


def _load_state(encoder: VGG19Encoder, state: dict[str, torch.Tensor], path: Path) -> VGG19Encoder:
    expected = encoder.features.state_dict()
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    missing = [f"features.{k}" for k in expected if k not in feats]
    unexpected = [f"features.{k}" for k in feats if k not in expected]
    unexpected += [k for k in state if not k.startswith(("features.", "classifier."))]
    if missing or unexpected:
        parts = ([f"missing keys {_short(missing)}"] if missing else []) + \
                ([f"unexpected keys {_short(unexpected)}"] if unexpected else [])
        raise ConfigError(f"VGG-19 weights {path} do not have torchvision's vgg19 layout: {'; '.join(parts)} "
                          f"(expected features.0 ... features.34 conv weights/biases, as in {VGG19.filename})")
    for k, v in expected.items():
        if tuple(feats[k].shape) != tuple(v.shape):
            raise ConfigError(f"VGG-19 weights {path}: features.{k} has shape {tuple(feats[k].shape)}, expected "
                              f"{tuple(v.shape)} (widths {encoder.widths})")
    # assign: the file's tensors become the parameters (the encoder may be on the meta device)
    encoder.features.load_state_dict({k: v.to(torch.float32).contiguous() for k, v in feats.items()},
                                     strict=True, assign=True)
    encoder.weights_path = path
    return encoder


def parse_encoder_spec(spec: str) -> tuple[str, Optional[tuple[int, ...]]]:
    """An encoder named by one string, for scripts and benchmarks: ``random:W1,W2,W3,W4,W5`` (a random
    VGG-19 of those block widths) → ``("random", (W1, ..., W5))``; any other spec (``random``, ``imagenet``,
    ``auto``, a file) → ``(spec, None)``. The pair is :func:`load_vgg19`'s ``weights`` and ``widths``.

    Raises:
        ConfigError: widths that are not five positive integers.
    """
    if not spec.startswith("random:"):
        return spec, None
    return "random", parse_widths(spec.split(":", 1)[1], 5, what=f"encoder {spec!r}",
                                  example="random:32,64,128,256,256")


def parse_widths(value: Union[str, Iterable[int]], n: int, *, what: str, example: str) -> tuple[int, ...]:
    """Channel widths from ``"W1,W2,..."`` or a sequence of ints, e.g. VGG-19's five block widths or a
    decoder's three: ``"32,64,128,256,256"`` → ``(32, 64, 128, 256, 256)``.

    Args:
        value: the widths as given (a comma-separated string or ints).
        n: how many widths are needed.
        what: the start of the error message, naming the option and its value (e.g. ``--widths 4,8``).
        example: a valid value for the message.

    Raises:
        ConfigError: not ``n`` positive integers (``"{what}: give {n} positive widths, e.g. {example}"``).
    """
    items = value.split(",") if isinstance(value, str) else value
    try:
        widths = tuple(int(w) for w in items)
    except (TypeError, ValueError):
        widths = ()
    if len(widths) != n or min(widths) < 1:
        raise ConfigError(f"{what}: give {n} positive widths, e.g. {example}")
    return widths


def load_vgg19(weights: Union[str, os.PathLike] = "random", *, seed: int = 0, pooling: str = "max",
               widths: Optional[Sequence[int]] = None, cache_dir: Optional[Union[str, os.PathLike]] = None,
               download: bool = False, padding: str = "zeros") -> VGG19Encoder:
    """A frozen VGG-19 encoder in eval mode.

    Args:
        weights: ``imagenet`` (the model-zoo file through :func:`imagegen.weights.find_weights`),
            ``random`` (Kaiming-normal, see :func:`random_init_`), ``auto`` (:func:`resolve_auto`: ``imagenet``
            if the file is found locally, without downloading, else the self-trained encoder of the cache
            if there is one, else ``random``), or the path of a torchvision-layout file.
        seed: seed of the random weights (``random``, or ``auto`` without the file).
        pooling: the encoder's default pooling, ``max`` or ``avg`` (see :class:`VGG19Encoder`).
        widths: conv widths of the five blocks: for ``random`` (default the standard ones); for a file,
            None reads them from the file (:func:`vgg19_file_widths`), otherwise they must match it.
        cache_dir: cache root for the ImageNet file (default ``$IMAGEGEN_CACHE`` or ``~/.cache/imagegen``).
        download: with ``imagenet``, download the file (checksum-verified) if it is nowhere local.
        padding: the convolutions' border handling, ``zeros`` or ``reflect`` (see :class:`VGG19Encoder`).

    Raises:
        WeightsError: ``imagenet`` (or ``auto`` resolving to it) and no file found (and not downloaded): one
            line naming the file, its URL and checksum-named file name, and where to put it; or a file whose
            SHA-256 is not the standard one's (:func:`imagegen.weights.verify_weights`; other weights of the
            same layout load by path).
        ConfigError: a file of the wrong layout or that cannot be read; ``widths`` other than the file's;
            an unknown pooling or padding.
    """
    name = os.fspath(weights)
    if name == "auto":
        name = resolve_auto(cache_dir)
    if name == "random":
        encoder = random_init_(VGG19Encoder(widths or VGG19_WIDTHS, pooling, device="meta", padding=padding), seed)
        encoder.source = f"random (Kaiming-normal, seed {seed}){_padding_note(padding)}"
        return encoder.freeze()
    if name == "imagenet":
        if widths is not None and tuple(widths) != VGG19_WIDTHS:
            raise ConfigError(f"VGG-19 widths {tuple(widths)}: the ImageNet file has the standard {VGG19_WIDTHS}")
        path = find_weights(VGG19, cache_dir=cache_dir, download=download)
        verify_weights(VGG19, path, instead=f"give the file's path as the encoder ({path}) to use other weights of "
                                            "torchvision's layout")
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"VGG-19 weights {name}: no such file; use imagenet, random, auto or the path of a "
                              f"torchvision-layout file such as {VGG19.filename}")
    state = read_vgg19_file(path)
    # the file's widths; without its block-first convs the layout check below names the missing keys
    file_widths = VGG19_WIDTHS if name == "imagenet" else (state_widths(state) or VGG19_WIDTHS)
    if name != "imagenet" and widths is not None and tuple(widths) != file_widths:
        raise ConfigError(f"VGG-19 widths {tuple(widths)}: the file {path} has widths {file_widths}; "
                          "leave the widths unset to use the file's")
    encoder = _load_state(VGG19Encoder(file_widths, pooling, device="meta", padding=padding), state, Path(path))
    encoder.source = f"{'imagenet' if name == 'imagenet' else 'file'} ({path}){_padding_note(padding)}"
    return encoder.freeze()


def _padding_note(padding: str) -> str:
    return ", reflection padding" if padding == "reflect" else ""


__all__ = ["VGG19Encoder", "load_vgg19", "resolve_auto", "self_trained_path", "SELF_TRAINED_FILENAME", "parse_encoder_spec",
           "load_vgg19_state_dict", "read_vgg19_file", "vgg19_file_widths",
           "state_widths", "parse_widths", "random_init_", "normalize_filters_", "layer_index", "pools_before",
           "LAYERS", "VGG19_WIDTHS", "POOLINGS", "PADDINGS", "check_padding", "min_image_size"]
