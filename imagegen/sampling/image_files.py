"""The image files of ``imagegen translate`` / ``imagegen restore``: listing and reading the inputs, finding
inpainting masks, and planning where the outputs go.

**Inputs** are an image file, a folder (searched recursively) or a ``.zip`` of images, read with the data
layer's readers (:class:`~imagegen.data.folder.ImageSource`, :func:`~imagegen.data.folder.decode_member`:
EXIF orientation applied, transparency composited onto white, 16-bit scaled to 8), converted to the
model's channel count (RGB → grayscale by ITU-R 601-2 luma, grayscale → RGB by repetition). Headers
are read first (:func:`scan_inputs`), so that unreadable files and images below the model's minimum
size are reported before anything is written.

**Masks** (inpainting) are images of the input's size, white (≥ 128) = missing pixel: one file for
every input, a folder/zip of files named like the inputs (``NAME.<ext>`` or ``NAME_mask.<ext>``), or
``NAME_mask.png`` files beside the inputs (as ``imagegen degrade`` writes them).

**Outputs** are PNG files (lossless, so that nothing is added to what is measured) under the input's
relative path with its extension replaced by ``.png`` (``photos/a.jpg`` → ``OUT/photos/a.png``); a
single input may instead be written to one file named by ``out`` (``.png``, ``.jpg``, ``.webp``).
An existing output folder that is not empty, or an existing output file, is written to only with
``force`` (files of the same names are replaced, other files are left alone); an output that would
replace one of the inputs is always refused.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

import torch

from ..data.base import uint8_to_float
from ..data.folder import IMAGE_EXTENSIONS, ImageSource, decode_member, native_channels
from ..errors import ConfigError, DataError
from .images import save_png_atomic, to_uint8_nhwc

#: the suffix of mask files written beside their images (``NAME_mask.png``, as ``imagegen degrade`` writes)
MASK_SUFFIX = "_mask"
#: reads the mask of one input: (name, (height, width)) → bool [1, 1, H, W] (True = missing) or None
MaskFn = Callable[[str, tuple[int, int]], Optional[torch.Tensor]]


@dataclasses.dataclass
class ImageInputs:
    """The images of an ``--input``: one file, a folder (recursive) or a zip.

    Attributes:
        path: the ``--input`` path.
        source: the folder or zip that holds them (for a single file, its folder).
        names: relative POSIX paths of the images in ``source``, sorted (one name for a file).
        single: whether ``path`` is one image file.
    """

    path: Path
    source: ImageSource
    names: list[str]
    single: bool

    def display(self, name: str) -> str:
        """How to name one input in messages (``folder/sub/a.png`` or ``archive.zip:sub/a.png``)."""
        return self.source.display(name)


def open_inputs(path: str | Path, what: str = "--input") -> ImageInputs:
    """List the images of an image file, a folder (recursively) or a ``.zip``.

    Raises:
        DataError: ``path`` does not exist, is not a valid zip, or holds no PNG/JPEG/WebP images.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist; give an image file, a folder or a .zip of images")
    if path.is_file() and path.suffix.lower() != ".zip":
        return ImageInputs(path, ImageSource(path.parent), [path.name], True)
    source = ImageSource(path)
    names = source.list_images()
    if not names:
        raise DataError(f"{what} {path} holds no PNG, JPEG or WebP images; give an image file, a folder or "
                        "a .zip of images")
    return ImageInputs(path, source, names, False)


def mask_partners(names: list[str]) -> dict[str, str]:
    """Masks written beside their images: ``{image name: mask name}`` for every ``DIR/NAME_mask.png`` whose
    image ``DIR/NAME.<ext>`` is in ``names`` (relative POSIX paths)."""
    stems = {_stem(n): n for n in names if not _stem(n).endswith(MASK_SUFFIX)}
    out = {}
    for n in names:
        s = _stem(n)
        if s.endswith(MASK_SUFFIX) and s[:-len(MASK_SUFFIX)] in stems:
            out[stems[s[:-len(MASK_SUFFIX)]]] = n
    return out


def _stem(name: str) -> str:
    """``sub/a.jpg`` → ``sub/a``."""
    p = PurePosixPath(name)
    return str(p.with_suffix("")) if p.suffix else name


def _relative_parts(name: str) -> tuple[str, ...]:
    """The path components of a listed name, without a root (zip members may be absolute)."""
    return tuple(p for p in PurePosixPath(name).parts if p not in ("/", "", ".", ".."))


@dataclasses.dataclass(frozen=True)
class InputInfo:
    """What an image's header says (no pixels decoded).

    Attributes:
        name: its relative path in the input.
        width, height: pixels (before EXIF rotation).
        channels: 1 (grayscale) or 3 (colour), what it decodes to natively.
    """

    name: str
    width: int
    height: int
    channels: int


def scan_inputs(inputs: ImageInputs) -> list[InputInfo]:
    """Read every input's header, so that unreadable files are reported before any output is written.

    Raises:
        DataError: a file that is not a readable image (one line naming it and the fix).
    """
    infos = []
    for name in inputs.names:
        try:
            with inputs.source.peek(name) as img:
                infos.append(InputInfo(name, img.size[0], img.size[1], native_channels(img)))
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for corrupt files
            reason = " ".join(str(e).split())[:160] or type(e).__name__
            raise DataError(f"cannot read image {inputs.display(name)} ({reason}); remove or replace it, "
                            "or give PNG/JPEG/WebP files") from None
    return infos


def check_min_size(inputs: ImageInputs, infos: list[InputInfo], minimum: int, model_name: str) -> None:
    """Raise :class:`ConfigError` for the first image whose width or height is below ``minimum`` pixels."""
    for info in infos:
        if min(info.width, info.height) < minimum:
            raise too_small_image(inputs.display(info.name), info.width, info.height, minimum, model_name)


def too_small_image(what: str, width: int, height: int, minimum: int, model_name: str) -> ConfigError:
    """The error for an image below the model's minimum size (its ``size_multiple``)."""
    return ConfigError(f"{what} is {width}x{height} pixels; {model_name} needs images of at least "
                       f"{minimum}x{minimum} (upscale it, or use a larger image)")


def channel_note(infos: list[InputInfo], channels: int, model_name: str) -> Optional[str]:
    """A one-line note when some inputs have another channel count than the model's (else None)."""
    other = sum(1 for i in infos if i.channels != channels)
    if not other:
        return None
    how = "to grayscale (ITU-R 601-2 luma)" if channels == 1 else "to RGB (grayscale repeated)"
    kind = "colour" if channels == 1 else "grayscale"
    return (f"note: {other} of {len(infos)} input image(s) are {kind}; converted {how} for {model_name}, "
            f"which takes {channels}-channel images")


def read_image(inputs: ImageInputs, name: str, channels: int) -> torch.Tensor:
    """Decode one input converted to ``channels`` (1 or 3).

    Returns:
        float32 [1, C, H, W] in [-1, 1].

    Raises:
        DataError: a corrupt or truncated file (one line naming it).
    """
    arr, _ = decode_member(inputs.source, name, None, channels, "bicubic", strict=True)  # [H, W, C] uint8
    return uint8_to_float(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0))


def read_mask(source: ImageSource, name: str, size: tuple[int, int], image: str) -> torch.Tensor:
    """Decode a mask image: white (≥ 128 after grayscale conversion) = missing pixel.

    Args:
        source, name: where the mask is.
        size: (H, W) of the image it belongs to.
        image: the image's display name, for messages.

    Returns:
        bool [1, 1, H, W], True = missing.

    Raises:
        DataError: unreadable mask, or a size other than the image's.
    """
    arr, _ = decode_member(source, name, None, 1, "bicubic", strict=True)  # [H, W, 1] uint8
    if arr.shape[:2] != size:
        raise DataError(f"mask {source.display(name)} is {arr.shape[1]}x{arr.shape[0]} but {image} is "
                        f"{size[1]}x{size[0]}; give a mask of the image's size (white = missing)")
    return torch.from_numpy(arr[..., 0] >= 128)[None, None]


def find_masks(inputs: ImageInputs, masks: Optional[str | Path]) -> tuple[ImageInputs, MaskFn, str]:
    """Inpainting masks for every input: from ``masks`` (one file for every input, or a folder/zip whose
    files match the inputs' relative paths, as ``NAME.<ext>`` or ``NAME_mask.<ext>``), else the
    ``NAME_mask.png`` files beside the inputs (taken out of the inputs), else none (the model's
    default mask).

    Returns:
        ``(inputs without the mask files, mask function, one-line description)``.

    Raises:
        DataError: ``masks`` missing or empty, or without a file for some input.
    """
    if masks is None:
        partners = mask_partners(inputs.names)
        if not partners:
            return inputs, lambda name, size: None, "no masks given: the model's default mask"
        mask_names = set(partners.values())
        kept = ImageInputs(inputs.path, inputs.source, [n for n in inputs.names if n not in mask_names],
                           inputs.single)

        def beside(name: str, size: tuple[int, int]) -> Optional[torch.Tensor]:
            m = partners.get(name)
            return None if m is None else read_mask(inputs.source, m, size, inputs.display(name))

        n = len(partners)
        rest = len(kept.names) - n
        return kept, beside, (f"masks: {n} NAME{MASK_SUFFIX}.png file(s) beside the inputs"
                              + (f", the model's default for {rest} other(s)" if rest else ""))
    mask_inputs = open_inputs(masks, "--mask")
    if mask_inputs.single:
        only = mask_inputs.names[0]
        return inputs, (lambda name, size: read_mask(mask_inputs.source, only, size, inputs.display(name))), \
            f"mask: {masks} for every input"
    by_stem = {_stem(n): n for n in mask_inputs.names}
    found = {}
    for name in inputs.names:
        s = _stem(name)
        m = by_stem.get(s) or by_stem.get(s + MASK_SUFFIX)
        if m is None:
            raise DataError(f"--mask {masks} has no mask for {inputs.display(name)} (expected {s}.png or "
                            f"{s}{MASK_SUFFIX}.png in it); give one mask per input, white = missing")
        found[name] = m

    def from_folder(name: str, size: tuple[int, int]) -> torch.Tensor:
        return read_mask(mask_inputs.source, found[name], size, inputs.display(name))

    return inputs, from_folder, f"masks: from {masks}"


def plan_outputs(inputs: ImageInputs, out: str | Path, force: bool) -> dict[str, Path]:
    """Where each input's output goes, checked before any work.

    ``out`` with an image extension (``.png``, ``.jpg``, ``.webp``) is one output file (for a single
    input); anything else is a folder that receives ``<relative path>.png`` per input.

    Returns:
        ``{input name: output path}``.

    Raises:
        ConfigError: a file ``out`` for several inputs; an existing file (or non-empty folder) without
            ``force``; a folder ``out`` that is a file; two inputs mapping to one output (``a.jpg`` and
            ``a.png``); an output that would replace an input; a missing parent directory of a file.
    """
    out = Path(out)
    if out.suffix.lower() in IMAGE_EXTENSIONS:
        if len(inputs.names) != 1:
            raise ConfigError(f"--out {out} is one image but --input {inputs.path} holds {len(inputs.names)} "
                              "images; give an output folder")
        if out.exists() and not force:
            raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
        if not out.parent.is_dir():
            raise ConfigError(f"directory {out.parent} does not exist; create it or choose another --out")
        plan = {inputs.names[0]: out}
    else:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder (or an image file name ending in .png "
                              "for a single input)")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise ConfigError(f"--out {out} exists and is not empty; pass --force to write into it (files of "
                              "the same names are replaced) or choose another --out")
        plan, seen = {}, {}
        for name in inputs.names:
            parts = _relative_parts(name)
            target = out.joinpath(*parts[:-1], Path(parts[-1]).stem + ".png")
            if target in seen:
                raise ConfigError(f"{inputs.display(seen[target])} and {inputs.display(name)} would both be "
                                  f"written to {target}; rename one of them")
            seen[target] = name
            plan[name] = target
    if inputs.source.is_dir:
        for name, target in plan.items():
            src = inputs.source.path / name
            if target.exists() and target.resolve() == src.resolve():
                raise ConfigError(f"--out would overwrite the input {src}; choose another --out")
    return plan


def write_image(img: torch.Tensor, path: Path) -> None:
    """Write float32 [1, C, H, W] in [-1, 1] (C = 1 or 3) as an image file (format from the extension),
    atomically, creating missing sub-folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png_atomic(to_uint8_nhwc(img)[0], path)
