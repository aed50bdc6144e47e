"""Datasets from a folder or a ``.zip`` of images (PNG, JPEG, WebP), searched recursively.

Labels come from class subfolders. Directories that every image shares are ignored first (so
``test/airplane/0001.jpg`` … ``test/truck/0999.jpg`` in a zip has the classes ``airplane`` …
``truck``). If every image then sits in a first-level subfolder, the sorted subfolder names are the
classes in label order; otherwise (images at the top, or a mix) the dataset is unlabelled.
Hidden files and folders (``.*``) and macOS ``__MACOSX/`` entries are skipped; other file types
are ignored.

Every image is decoded once, converted to one channel count, resized (short side) and
centre-cropped to the target resolution (or, with ``resize="pad"``, zero-padded to it) at load time,
so only the small images are kept in memory.
Zip members are read directly, without extracting. An image that cannot be decoded is skipped with
one warning naming the count and the first few files, or, with ``strict=True``, is an error.

The pieces shared with :class:`~imagegen.data.streaming.StreamingImageDataset` (which decodes the same
files on access instead) live here too: :class:`ImageSource` (a folder or zip whose members are opened
on demand, safely in forked worker processes), :func:`decode_member` (decode one file, naming it on
failure) and :func:`native_channels` (the channel count an image decodes to, from its header).
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import numpy as np
from PIL import Image

from ..errors import DataError
from .base import RawData
from .transforms import PAD, check_resize, resize_center_crop_pil

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_MAX_NAMES_IN_WARNING = 5


class CorruptImageWarning(UserWarning):
    """Some images of a folder or zip could not be decoded and were skipped."""


def is_image_name(name: str) -> bool:
    """Whether a relative path names a loadable image (by extension; hidden files excluded)."""
    parts = _posix_parts(name.replace("\\", "/"))
    if not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return parts[-1].lower().endswith(IMAGE_EXTENSIONS)


def _posix_parts(name: str) -> tuple[str, ...]:
    """``PurePosixPath(name).parts``, without building a path object for the usual clean names."""
    if name.startswith(("/", "./")) or name.endswith(("/", "/.")) or "//" in name or "/./" in name or name == ".":
        return PurePosixPath(name).parts
    return tuple(name.split("/")) if name else ()


def list_images(path: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the images in a folder (recursive) or zip, sorted.

    Raises:
        DataError: ``path`` does not exist, or is neither a folder nor a valid zip file.
    """
    with ImageSource(path) as source:
        return source.list_images()


def labels_from_paths(names: list[str]) -> tuple[Optional[np.ndarray], Optional[list[str]]]:
    """Class labels from first-level subfolders, after dropping directories shared by every path.

    Args:
        names: relative POSIX paths, e.g. ``["train/cat/1.png", "train/dog/2.png"]``.

    Returns:
        ``(labels, class_names)``: int64 [N] indices into the sorted subfolder names, or
        ``(None, None)`` when the images are not all in class subfolders.
    """
    parts = [_posix_parts(n) for n in names]
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
        resolution: square output size R (short side resized to R, then centre crop; with ``pad``
            zero-padded to R), or None to keep the size.
        channels: 1 (grayscale, ITU-R 601-2 luma), 3 (RGB), or None for the image's own: 1 for
            grayscale modes, else 3.
        resize: Pillow resampling method (a key of :data:`imagegen.data.transforms.RESAMPLE`) or
            ``pad`` (see :mod:`imagegen.data.transforms`).

    Returns:
        uint8 array [H, W, C] (C = 1 or 3; [R, R, C] when ``resolution`` is given).

    Raises:
        DataError: with ``pad``, an image larger than R.
        Exception: whatever Pillow raises for a corrupt, truncated or unsupported file (callers
            catch it and name the file).
    """
    with Image.open(fp) as img:
        if img.format == "JPEG":  # no reduced-scale decoding for pad: it must see the true size
            img.draft("L" if channels == 1 else None,
                      (resolution, resolution) if resolution and resize != PAD else None)
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
        resolution: square output size R: each image's short side is resized to R, then centre-cropped
            (with ``pad``: zero-padded to R). None keeps the native size, which must then be the same
            for all images.
        resize: Pillow resampling method (``bicubic``, ``bilinear``, ``lanczos``, ``box``, ``nearest``),
            or ``pad``: no resampling, images of at most R×R zero-padded to R×R, centred (see
            :mod:`imagegen.data.transforms`).
        strict: fail on the first image that cannot be decoded instead of skipping it with a warning.
        channels: 1 (grayscale) or 3 (RGB); None: RGB if any image is colour, else grayscale.

    Returns:
        RawData: images uint8 [N, H, W, C] in sorted path order; labels int64 [N] and
        ``class_names`` from class subfolders (see the module docstring), or None.

    Raises:
        DataError: ``path`` missing or not a folder/zip; no images in it; none decodable; a corrupt
            image with ``strict``; different sizes with ``resolution=None``; bad ``resize`` or
            ``channels``; with ``pad``, an image larger than R. Each message names the file and the fix.

    Warns:
        CorruptImageWarning: when some images were skipped (count and first few names).
    """
    path = Path(path)
    check_options(resize, channels)
    with ImageSource(path) as source:
        names = source.list_images()
        if not names:
            raise DataError(f"{path} contains no PNG, JPEG or WebP images; point to a folder or .zip of images")
        labels, class_names = labels_from_paths(names)

        out: Optional[np.ndarray] = None  # [N, H, W, C] uint8, allocated at the first decoded image
        keep = np.zeros(len(names), bool)
        bad: list[tuple[str, str]] = []  # (name, reason)
        first_name = ""
        for i, name in enumerate(names):
            arr, reason = decode_member(source, name, resolution, channels, resize, strict, i)  # [H, W, C]
            if arr is None:
                bad.append((name, reason))
                continue
            if out is None:
                out = np.empty((len(names),) + arr.shape, np.uint8)
                first_name = name
            elif arr.shape[:2] != out.shape[1:3]:
                raise size_mismatch_error(source, name, arr.shape, first_name, out.shape[1:])
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


def check_options(resize: str, channels: Optional[int]) -> None:
    """Validate the ``resize`` and ``channels`` options of a folder/zip loader.

    Raises:
        DataError: ``resize`` not one of :data:`~imagegen.data.transforms.RESIZE_METHODS`, or
            ``channels`` not None, 1 or 3.
    """
    check_resize(resize)
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels!r}")


def decode_member(source: "ImageSource", name: str, resolution: Optional[int], channels: Optional[int],
                  resize: str, strict: bool, position: Optional[int] = None) -> tuple[Optional[np.ndarray], str]:
    """Decode one image of a folder/zip with :func:`decode_image`, naming the file if that fails.

    Args:
        source: the folder or zip.
        name: the image's relative path in it (from :func:`list_images`).
        resolution, channels, resize: as for :func:`decode_image`.
        strict: raise on a file that cannot be decoded instead of returning its reason.
        position: the image's index in ``source.list_images()`` (faster reads from a zip).

    Returns:
        ``(array, "")`` with the uint8 array [H, W, C], or ``(None, reason)`` for a corrupt, truncated
        or unsupported file when not ``strict`` (reason: one line, Pillow's message).

    Raises:
        DataError: with ``strict``, a file that cannot be decoded (message names it and the fix); with
            ``pad``, an image larger than R (always: that is not a corrupt file to skip).
    """
    try:
        return decode_image(source.open(name, position), resolution, channels, resize), ""
    except DataError as e:  # pad: image larger than the resolution
        raise DataError(f"{source.display(name)}: {e}") from None
    except Exception as e:  # noqa: BLE001 - decoders raise many types for corrupt data
        reason = " ".join(str(e).split()) or type(e).__name__
        if strict:
            raise DataError(f"cannot decode image {source.display(name)} ({reason}); remove or "
                            "replace it, or load without strict to skip corrupt images") from e
        return None, reason


def size_mismatch_error(source: "ImageSource", name: str, shape: tuple[int, ...], first_name: str,
                        first_shape: tuple[int, ...]) -> DataError:
    """The error for an image of another size than the first one when no resolution is given.

    Args:
        source: the folder or zip.
        name, shape: the offending image and its array shape (H, W, C).
        first_name, first_shape: the first decoded image and its shape (H, W, ...).
    """
    return DataError(f"{source.display(name)} is {shape[1]}x{shape[0]} but {source.display(first_name)} "
                     f"is {first_shape[1]}x{first_shape[0]}; pass a resolution to resize all images to "
                     "one size")


def native_channels(img: Image.Image) -> int:
    """The channel count :func:`decode_image` gives ``img`` with ``channels=None``: 1 or 3.

    Only the header (and, for palette images, the palette) is needed, so this works on an image
    opened with ``Image.open`` and not yet loaded: 1 for grayscale modes and palettes whose entries
    are all grey (without transparency), 3 for everything else.
    """
    if img.mode in ("P", "PA"):
        if img.mode == "PA" or "transparency" in img.info:
            return 3  # composited onto white as RGBA
        pal = np.asarray(img.getpalette() or [0, 0, 0]).reshape(-1, 3)
        return 1 if (pal == pal[:, :1]).all() else 3
    return 1 if img.mode in _GRAY_MODES else 3


def _to_l_or_rgb(img: Image.Image, channels: Optional[int]) -> Image.Image:
    """Convert any Pillow mode to ``L`` (channels=1) or ``RGB`` (channels=3 or colour input)."""
    if img.mode in ("P", "PA"):
        if img.mode == "PA" or "transparency" in img.info:
            img = img.convert("RGBA")
        else:
            img = img.convert("L" if native_channels(img) == 1 else "RGB")  # grey palette → L
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


class ImageSource:
    """A folder or a ``.zip`` of images whose files are opened on demand, safely in worker processes.

    For a zip, :meth:`list_images` also records where each listed member's bytes lie (offset, size,
    compression, CRC: 21 bytes per image in numpy arrays, no Python object per member), and
    ``open(name, position)`` then reads the member with ``os.pread`` — position-independent reads, so
    forked ``DataLoader`` workers never share a file offset, and they need no ``ZipFile`` (whose
    directory takes ≈600 bytes per member and 0.6 s per 50,000 members to parse in every process).
    Everything else (listing, :meth:`peek`, members opened by name) uses a ``ZipFile`` opened on
    first use in each process (keyed by the process id: a ``ZipFile`` inherited through ``fork``
    shares its file offset with the parent). Pickling drops the open files. Usable as a context
    manager that closes them on exit.

    Args:
        path: the folder or zip (not checked here: :meth:`list_images` does that).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.is_dir = self.path.is_dir()
        self._zf: Optional[zipfile.ZipFile] = None
        self._pid = -1
        self._raw: Optional[io.FileIO] = None  # unbuffered file for os.pread (any process may use it)
        self._raw_pid = -1
        self._index: Optional[dict[str, np.ndarray]] = None  # zip: per listed member, in listing order

    def list_images(self) -> list[str]:
        """Relative POSIX paths of the images in the folder (recursive) or zip, sorted.

        For a zip, also indexes the listed members for ``open(name, position)``.

        Raises:
            DataError: the path does not exist, or is neither a folder nor a valid zip file.
        """
        path = self.path
        if self.is_dir:
            names, seen = [], {os.path.realpath(path)}
            for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
                dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"
                               and os.path.realpath(os.path.join(dirpath, d)) not in seen]  # no symlink loops
                seen.update(os.path.realpath(os.path.join(dirpath, d)) for d in dirnames)
                rel = Path(dirpath).relative_to(path).as_posix()
                prefix = "" if rel == "." else rel + "/"
                names += [prefix + f for f in filenames if is_image_name(f)]
            return sorted(names)
        if not path.exists():
            raise DataError(f"{path} does not exist; pass an existing folder or .zip of images")
        try:
            infos = self._zip().infolist()
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{path} is neither a folder nor a valid .zip of images ({e}); pass a folder "
                            "or zip of PNG/JPEG/WebP images") from e
        infos = sorted((i for i in infos if not i.is_dir() and is_image_name(i.filename)), key=lambda i: i.filename)
        direct = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # other methods and encryption: through ZipFile (255)
        self._index = {"offset": np.array([i.header_offset for i in infos], np.int64),
                       "size": np.array([i.compress_size for i in infos], np.int64),
                       "crc": np.array([i.CRC for i in infos], np.uint32),
                       "method": np.array([i.compress_type if i.compress_type in direct and not i.flag_bits & 1
                                           else 255 for i in infos], np.uint8)}
        return [i.filename for i in infos]

    @property
    def indexed(self) -> bool:
        """Whether zip members can be opened by position (a folder, or a zip after :meth:`list_images`)."""
        return self.is_dir or self._index is not None

    def _zip(self) -> zipfile.ZipFile:
        if self._zf is None or self._pid != os.getpid():
            self._zf, self._pid = zipfile.ZipFile(self.path), os.getpid()  # an inherited handle is dropped
        return self._zf

    def open(self, name: str, position: Optional[int] = None) -> Path | io.BytesIO:
        """What :func:`decode_image` reads for image ``name``: its path, or its bytes from the zip.

        Args:
            name: the image's relative path.
            position: its index in the last :meth:`list_images` result, to read a zip member
                without ``ZipFile`` (checked against the member's local header).

        Raises:
            OSError, KeyError, zipfile.BadZipFile, zlib.error: the file is missing or unreadable, or
                a zip member fails its CRC check.
        """
        if self.is_dir:
            return self.path / name
        if position is not None and self._index is not None and 0 <= position < len(self._index["offset"]):
            data = self._read_indexed(name, position)
            if data is not None:
                return io.BytesIO(data)
        return io.BytesIO(self._zip().read(name))  # seekable, as Pillow needs

    def _read_indexed(self, name: str, i: int) -> Optional[bytes]:
        """Member ``i``'s bytes read with ``os.pread``, or None if it must go through ``ZipFile``."""
        index = self._index
        method = int(index["method"][i])
        if method == 255:
            return None
        if self._raw is None or self._raw_pid != os.getpid():
            self._raw, self._raw_pid = open(self.path, "rb", buffering=0), os.getpid()
        fd, offset = self._raw.fileno(), int(index["offset"][i])
        header = os.pread(fd, 30, offset)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local file header for {name}")
        name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
        if os.pread(fd, name_len, offset + 30) not in _zip_name_bytes(name):
            return None  # not the member listed at this position: look it up by name
        data = os.pread(fd, int(index["size"][i]), offset + 30 + name_len + extra_len)
        if method == zipfile.ZIP_DEFLATED:
            data = zlib.decompress(data, -15)
        if zlib.crc32(data) != int(index["crc"][i]):
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {name!r}")
        return data

    @contextlib.contextmanager
    def peek(self, name: str) -> Iterator[Image.Image]:
        """Image ``name`` opened but not decoded, for its header (``mode``, ``size``, ``info``).

        Raises:
            Exception: whatever Pillow raises for an unreadable header (and as :meth:`open`).
        """
        fp = self.path / name if self.is_dir else self._zip().open(name)  # zip: streamed, not read whole
        try:
            with Image.open(fp) as img:
                yield img
        finally:
            if not self.is_dir:
                fp.close()

    def display(self, name: str) -> str:
        """How to name one image in messages: ``folder/sub/x.png`` or ``archive.zip:sub/x.png``."""
        return str(self.path / name) if self.is_dir else f"{self.path}:{name}"

    def close(self) -> None:
        """Close this process's open files, if any (they are reopened on the next access; the index
        of a listed zip is kept)."""
        if self._zf is not None and self._pid == os.getpid():
            self._zf.close()
        if self._raw is not None and self._raw_pid == os.getpid():
            self._raw.close()
        self._zf, self._pid, self._raw, self._raw_pid = None, -1, None, -1

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zf": None, "_pid": -1, "_raw": None, "_raw_pid": -1}


def _zip_name_bytes(name: str) -> tuple[bytes, ...]:
    """The ways a zip's local header may spell ``name``: UTF-8 (flag bit 11) or code page 437."""
    utf8 = name.encode("utf-8")
    try:
        return utf8, name.encode("cp437")
    except UnicodeEncodeError:
        return (utf8,)
