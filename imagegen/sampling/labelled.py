"""A labelled image data set drawn from a class-conditional model, as a folder or a ``.zip``.

The layout is the one image-folder loaders read (this toolkit's :mod:`imagegen.data.folder`,
torchvision's ``ImageFolder``, Keras' ``image_dataset_from_directory``): one sub-folder per class
holding that class's samples as lossless PNG files, ``CLASS/000000.png``, … Loaders number classes
by the sorted sub-folder names, so the folder names are chosen to sort in label order: the run's
class names where that holds (sanitised for file systems: ``T-shirt/top`` → ``T-shirt_top``),
otherwise the zero-padded label index, prefixed to the name when there is one (``0_T-shirt_top``,
``1_Trouser``, …; MNIST's ``0`` … ``9`` stay as they are). Reading the output back with
``imagegen.data.build_dataset(path)`` therefore gives every image the label it was generated with.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from ..errors import ConfigError
from .api import SAMPLE_BATCH
from .images import to_pil, to_uint8_nhwc


def class_folder_names(num_classes: int, class_names: Optional[Sequence[str]] = None) -> list[str]:
    """Sub-folder names, one per class, whose sorted order is the label order.

    Args:
        num_classes: K >= 1.
        class_names: the run's class names in label order (ignored unless there are K of them).

    Returns:
        K distinct names, each safe as a folder name on any file system and not hidden.
    """
    width = len(str(num_classes - 1))
    index = [f"{i:0{width}d}" for i in range(num_classes)]
    if not class_names or len(class_names) != num_classes or list(class_names) == [str(i) for i in range(num_classes)]:
        return index
    safe = [re.sub(r"[^\w.+-]+", "_", str(n)).strip("._ ") for n in class_names]
    if all(safe) and len(set(safe)) == num_classes and sorted(safe) == safe:
        return safe
    return [f"{i}_{s}" if s else i for i, s in zip(index, safe)]


def check_labelled_out(out: Path, force: bool) -> str:
    """Check where :func:`save_labelled_samples` will write, before any work.

    ``out`` ending in ``.zip`` is an archive (replaced only with ``force``); anything else is a folder,
    which may exist only empty, or with ``force`` (files of the same names are then replaced, others
    left alone, as ``imagegen translate`` does).

    Returns:
        ``"zip"`` or ``"folder"``.

    Raises:
        ConfigError: an existing output without ``force``, a folder that is a file, a missing parent.
    """
    if out.suffix.lower() == ".zip":
        if out.exists() and not force:
            raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
        if out.is_dir():
            raise ConfigError(f"--out {out} is a folder; give a .zip file name or a folder without .zip")
        if not out.parent.is_dir():
            raise ConfigError(f"directory {out.parent} does not exist; create it or choose another --out")
        return "zip"
    if out.suffix.lower() in (".npz", ".png", ".jpg", ".jpeg", ".webp"):
        raise ConfigError(f"--out {out}: --num-per-class writes an image folder or a .zip; drop the "
                          f"{out.suffix} extension or use .zip")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder or a .zip")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out {out} exists and is not empty; pass --force to write into it (files of the "
                          "same names are replaced) or choose another --out")
    if not out.parent.is_dir():
        raise ConfigError(f"directory {out.parent} does not exist; create it or choose another --out")
    return "folder"


def save_labelled_samples(model: Any, out: str | os.PathLike, num_per_class: int, *, seed: int = 0,
                          batch_size: int = SAMPLE_BATCH, class_names: Optional[Sequence[str]] = None, force: bool = False,
                          **options: Any) -> str:
    """Draw ``num_per_class`` samples of every class and write them as a labelled image folder or zip.

    Class c's images come from :func:`imagegen.sampling.generate` with seed ``seed·K + c`` (so each
    class is reproducible on its own, different seeds never share latents, and memory holds one class
    at a time); file ``i`` of a class is ``{i:06d}.png``, uint8 PNG (grayscale or RGB as the model).

    Args:
        model: a class-conditional model (``num_classes`` K > 0), e.g. from :func:`~imagegen.sampling.load_run`.
        out: ``NAME.zip`` or a folder (see :func:`check_labelled_out`).
        num_per_class: n >= 1 images per class.
        seed: sampling seed.
        batch_size: images per forward pass.
        class_names: class names in label order for the folder names (see :func:`class_folder_names`).
        force: replace an existing zip / write into a non-empty folder.
        options: passed to ``model.sample`` (truncation, temperature, ...).

    Returns:
        A one-line description of what was written.

    Raises:
        ConfigError: an unconditional model, n < 1, or a bad ``out`` (see :func:`check_labelled_out`).
    """
    from .api import generate

    out = Path(out)
    k = model.num_classes
    if not k:
        raise ConfigError(f"--num-per-class writes a labelled data set and needs a class-conditional model; "
                          f"{model.model_name} is unconditional (use --num for unlabelled samples)")
    if num_per_class < 1:
        raise ConfigError(f"--num-per-class {num_per_class}: must be >= 1")
    kind = check_labelled_out(out, force)
    folders = class_folder_names(k, class_names)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    archive = zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) if kind == "zip" else None  # PNGs are compressed
    try:
        for c, folder in enumerate(folders):
            labels = torch.full((num_per_class,), c, dtype=torch.int64)
            arr = to_uint8_nhwc(generate(model, num_per_class, seed=seed * k + c, batch_size=batch_size,
                                         labels=labels, **options))  # [n, H, W, C]
            if archive is None:
                (out / folder).mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(arr):
                name = f"{folder}/{i:06d}.png"
                if archive is not None:
                    buf = io.BytesIO()
                    to_pil(img).save(buf, format="PNG")
                    archive.writestr(name, buf.getvalue())
                else:
                    to_pil(img).save(out / name)
        if archive is not None:
            archive.close()
            os.replace(tmp, out)
    finally:
        if archive is not None:
            archive.close()
            tmp.unlink(missing_ok=True)
    h, w, ch = arr.shape[1:]
    text = (f"wrote {k * num_per_class} images ({num_per_class} per class, {k} classes, {ch}x{h}x{w}) to {out} "
            f"as class folders {folders[0]}/ … {folders[-1]}/")
    if kind == "folder":  # --force into an earlier, larger sample set: its extra images would join the data set
        stale = sum(1 for folder in folders for p in (out / folder).glob("*.png")
                    if p.stem.isdigit() and len(p.stem) == 6 and int(p.stem) >= num_per_class)
        if stale:
            text += (f"; note: {stale} images of an earlier run ({num_per_class:06d}.png and above) remain in the "
                     "class folders and would be read with the new ones; delete them or write to an empty folder")
    return text
