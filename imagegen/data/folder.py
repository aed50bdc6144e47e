"""Datasets from a folder or a ``.zip`` of images (PNG, JPEG, WebP), searched recursively.

Labels come from class subfolders. Directories that every image shares are ignored first (so
``test/airplane/0001.jpg`` … ``test/truck/0999.jpg`` in a zip has the classes ``airplane`` …
``truck``). If every image then sits in a first-level subfolder, the sorted subfolder names are the
classes in label order; otherwise (images at the top, or a mix) the dataset is unlabelled.
Hidden files and folders (``.*``) and macOS ``__MACOSX/`` entries are skipped; other file types
are ignored.

Every image is decoded once, converted to one channel count, resized (short side) and
centre-cropped to the target resolution at load time, so only the small images are kept in memory.
Zip members are read directly, without extracting. An image that cannot be decoded is skipped with
one warning naming the count and the first few files, or, with ``strict=True``, is an error.
"""
from __future__ import annotations

import io
import os
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

import numpy as np
from PIL import Image

from ..errors import DataError
from .base import RawData
from .transforms import RESAMPLE, resize_center_crop_pil

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_MAX_NAMES_IN_WARNING = 5


class CorruptImageWarning(UserWarning):
    """Some images of a folder or zip could not be decoded and were skipped."""


def is_image_name(name: str) -> bool:
    """Whether a relative path names a loadable image (by extension; hidden files excluded)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return parts[-1].lower().endswith(IMAGE_EXTENSIONS)


def list_images(path: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the images in a folder (recursive) or zip, sorted.

    Raises:
        DataError: ``path`` does not exist, or is neither a folder nor a valid zip file.
    """
    path = Path(path)
    if path.is_dir():
        names, seen = [], {os.path.realpath(path)}
        for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"
                           and os.path.realpath(os.path.join(dirpath, d)) not in seen]  # no symlink loops
            seen.update(os.path.realpath(os.path.join(dirpath, d)) for d in dirnames)
            rel = Path(dirpath).relative_to(path)
            names += [(rel / f).as_posix() for f in filenames if is_image_name(f)]
        return sorted(names)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass an existing folder or .zip of images")
    try:
        with zipfile.ZipFile(path) as zf:
            return sorted(i.filename for i in zf.infolist() if not i.is_dir() and is_image_name(i.filename))
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is neither a folder nor a valid .zip of images ({e}); pass a folder "
                        "or zip of PNG/JPEG/WebP images") from e


def labels_from_paths(names: list[str]) -> tuple[Optional[np.ndarray], Optional[list[str]]]:
    """Class labels from first-level subfolders, after dropping directories shared by every path.

    Args:
        names: relative POSIX paths, e.g. ``["train/cat/1.png", "train/dog/2.png"]``.

    Returns:
        ``(labels, class_names)``: int64 [N] indices into the sorted subfolder names, or
        ``(None, None)`` when the images are not all in class subfolders.
    """
    parts = [PurePosixPath(n).parts for n in names]
    depth = 0  # number of leading directories shared by every path
    while parts and all(len(p) > depth + 1 for p in parts) and len({p[depth] for p in parts}) == 1:
        depth += 1
    if not parts or any(len(p) < depth + 2 for p in parts):
        return None, None
    classes = [p[depth] for p in parts]
    class_names = sorted(set(classes))
    index = {c: i for i, c in enumerate(class_names)}
    return np.array([index[c] for c in classes], np.int64), class_names


def decode_image(fp, resolution: Optional[int] = None, channels: Optional[int] = None,
                 resize: str = "bicubic") -> np.ndarray:
    """Decode one image file to a uint8 array, converted and resized.

    Modes are converted sensibly: palette images through RGB(A); transparent images are composited
    onto white; 16-bit grayscale is scaled to 8 bits; CMYK/YCbCr/LAB to RGB; EXIF orientation is
    applied. JPEGs are decoded at a reduced scale (``Image.draft``) when much larger than needed.

    Args:
        fp: a path or a binary file object.
        resolution: square output size R (short side resized to R, then centre crop), or None to
            keep the size.
        channels: 1 (grayscale, ITU-R 601-2 luma), 3 (RGB), or None for the image's own: 1 for
            grayscale modes, else 3.
        resize: Pillow resampling method (a key of :data:`imagegen.data.transforms.RESAMPLE`).

    Returns:
        uint8 array [H, W, C] (C = 1 or 3; [R, R, C] when ``resolution`` is given).

    Raises:
        Exception: whatever Pillow raises for a corrupt, truncated or unsupported file (callers
            catch it and name the file).
    """
    with Image.open(fp) as img:
        if img.format == "JPEG":
            img.draft("L" if channels == 1 else None, (resolution, resolution) if resolution else None)
        img.load()  # decode now so that truncated data fail here
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
        img = _to_l_or_rgb(img, channels)
        if resolution is not None:
            img = resize_center_crop_pil(img, resolution, resize)
        arr = np.asarray(img)
    return arr[..., None] if arr.ndim == 2 else arr


def load_image_files(path: str | os.PathLike, resolution: Optional[int] = None, resize: str = "bicubic",
                     strict: bool = False, channels: Optional[int] = None) -> RawData:
    """Load every image of a folder (recursively) or zip into memory.

    Args:
        path: a folder or a ``.zip`` file.
        resolution: square output size R: each image's short side is resized to R, then centre-cropped.
            None keeps the native size, which must then be the same for all images.
        resize: Pillow resampling method (``bicubic``, ``bilinear``, ``lanczos``, ``box``, ``nearest``).
        strict: fail on the first image that cannot be decoded instead of skipping it with a warning.
        channels: 1 (grayscale) or 3 (RGB); None: RGB if any image is colour, else grayscale.

    Returns:
        RawData: images uint8 [N, H, W, C] in sorted path order; labels int64 [N] and
        ``class_names`` from class subfolders (see the module docstring), or None.

    Raises:
        DataError: ``path`` missing or not a folder/zip; no images in it; none decodable; a corrupt
            image with ``strict``; different sizes with ``resolution=None``; bad ``resize`` or
            ``channels``. Each message names the file and the fix.

    Warns:
        CorruptImageWarning: when some images were skipped (count and first few names).
    """
    path = Path(path)
    if resize not in RESAMPLE:
        raise DataError(f"unknown resize method {resize!r}; use one of {sorted(RESAMPLE)}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels!r}")
    names = list_images(path)
    if not names:
        raise DataError(f"{path} contains no PNG, JPEG or WebP images; point to a folder or .zip of images")
    labels, class_names = labels_from_paths(names)

    out: Optional[np.ndarray] = None  # [N, H, W, C] uint8, allocated at the first decoded image
    keep = np.zeros(len(names), bool)
    bad: list[tuple[str, str]] = []  # (name, reason)
    first_name = ""
    with _opener(path) as open_member:
        for i, name in enumerate(names):
            try:
                arr = decode_image(open_member(name), resolution, channels, resize)  # [H, W, C]
            except Exception as e:  # noqa: BLE001 - decoders raise many types for corrupt data
                reason = " ".join(str(e).split()) or type(e).__name__
                if strict:
                    raise DataError(f"cannot decode image {_display(path, name)} ({reason}); remove or "
                                    "replace it, or load without strict to skip corrupt images") from e
                bad.append((name, reason))
                continue
            if out is None:
                out = np.empty((len(names),) + arr.shape, np.uint8)
                first_name = name
            elif arr.shape[:2] != out.shape[1:3]:
                raise DataError(f"{_display(path, name)} is {arr.shape[1]}x{arr.shape[0]} but "
                                f"{_display(path, first_name)} is {out.shape[2]}x{out.shape[1]}; pass a "
                                "resolution to resize all images to one size")
            elif arr.shape[2] != out.shape[3]:  # channels=None: a colour image after grayscale ones
                if arr.shape[2] == 1:
                    arr = np.repeat(arr, 3, axis=2)
                else:
                    out = np.repeat(out, 3, axis=3)
            out[i] = arr
            keep[i] = True
    if out is None:
        name, reason = bad[0]
        raise DataError(f"none of the {len(names)} images in {path} could be decoded (first: {name}: "
                        f"{reason}); check that they are valid PNG/JPEG/WebP files")
    if bad:
        shown = ", ".join(n for n, _ in bad[:_MAX_NAMES_IN_WARNING])
        more = f" and {len(bad) - _MAX_NAMES_IN_WARNING} more" if len(bad) > _MAX_NAMES_IN_WARNING else ""
        warnings.warn(f"{path}: skipped {len(bad)} of {len(names)} images that could not be decoded: "
                      f"{shown}{more} (first error: {bad[0][1]}); load with strict to fail instead",
                      CorruptImageWarning, stacklevel=2)
        out = out[keep]
        labels = None if labels is None else labels[keep]
    return RawData(out, labels, class_names)


def _to_l_or_rgb(img: Image.Image, channels: Optional[int]) -> Image.Image:
    """Convert any Pillow mode to ``L`` (channels=1) or ``RGB`` (channels=3 or colour input)."""
    if img.mode in ("P", "PA"):
        if img.mode == "PA" or "transparency" in img.info:
            img = img.convert("RGBA")
        else:
            pal = np.asarray(img.getpalette() or [0, 0, 0]).reshape(-1, 3)
            img = img.convert("L" if (pal == pal[:, :1]).all() else "RGB")  # grey palette → L
    gray = img.mode in _GRAY_MODES
    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img)
        if img.mode != "F":
            a = np.clip(a.astype(np.int64), 0, 65535) >> 8  # 16-bit (or 32-bit int) → 8-bit
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    elif img.mode in ("RGBA", "LA", "La", "RGBa"):  # composite onto white
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        img = img.convert("L" if gray else "RGB")
    elif img.mode not in ("L", "RGB"):  # 1, CMYK, YCbCr, LAB, HSV, ...
        img = img.convert("L" if gray else "RGB")
    target = {1: "L", 3: "RGB"}.get(channels, img.mode)
    return img if img.mode == target else img.convert(target)


class _opener:
    """Context manager yielding ``open_member(name) -> file object`` for a folder or a zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zf: Optional[zipfile.ZipFile] = None

    def __enter__(self) -> Callable[[str], object]:
        if self.path.is_dir():
            return lambda name: self.path / name
        self.zf = zipfile.ZipFile(self.path)
        return lambda name: io.BytesIO(self.zf.read(name))  # seekable, as Pillow needs

    def __exit__(self, *exc: object) -> None:
        if self.zf is not None:
            self.zf.close()


def _display(path: Path, name: str) -> str:
    """How to name one image in messages: ``folder/sub/x.png`` or ``archive.zip:sub/x.png``."""
    return str(path / name) if path.is_dir() else f"{path}:{name}"
