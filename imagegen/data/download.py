"""Finding a dataset's directory and downloading missing files (atomic, checksum-verified, stdlib only).

:func:`download_file` is the toolkit's one downloader: datasets check an md5, pretrained weights
(:mod:`imagegen.weights`) a SHA-256 or a SHA-256 prefix. Only files that are downloaded here are
checked against their checksum: a file the user put in the data directory is never rejected (or
deleted) for its checksum, because re-compressed copies of the same data are common (e.g. a
``gzip -9 -n`` MNIST file has another md5 but identical content); the loaders check the structure of
what they read instead.

A download goes to a temporary file in the destination directory, is verified, then renamed into
place with :func:`os.replace`, so an interrupted or corrupted download never leaves a half-written
file under the final name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional

from ..errors import DataError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 60.0
_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Resource:
    """A file of a named dataset and where to download it.

    Attributes:
        filename: name of the file in the data directory, e.g. ``train-images-idx3-ubyte.gz``.
        url: canonical download address (``http(s)://`` or ``file://``).
        md5: hex md5 of the file at ``url``, checked after downloading.
    """

    filename: str
    url: str
    md5: str


def _file_hexdigest(path: str | os.PathLike, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 digest of a file, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    return _file_hexdigest(path, "md5")


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest (64 digits) of a file, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    return _file_hexdigest(path, "sha256")


_HEX = re.compile(r"[0-9a-f]+")


def sha256_matches(digest: str, expected: str) -> bool:
    """Whether a hex SHA-256 ``digest`` matches ``expected``: the full 64 hex digits, or a prefix of at
    least 8 (torch.hub's ``hash_prefix`` check: ``digest[:len(prefix)] == prefix``). Case-insensitive.

    Raises:
        ValueError: ``expected`` is not 8 to 64 hex digits.
    """
    return digest.lower().startswith(checked_sha256(expected))


def checked_sha256(expected: str) -> str:
    """``expected`` in lower case, checked to be a full hex SHA-256 or a prefix of at least 8 digits.

    Raises:
        ValueError: ``expected`` is not 8 to 64 hex digits.
    """
    expected = expected.lower()
    if not 8 <= len(expected) <= 64 or not _HEX.fullmatch(expected):
        raise ValueError(f"sha256 {expected!r}: give 8 to 64 hex digits (a full digest or its prefix)")
    return expected


class DownloadError(DataError):
    """A download failed (network, HTTP or file-system error); the message is one line."""


def download_file(url: str, dest: str | os.PathLike, md5: Optional[str] = None, *, sha256: Optional[str] = None,
                  timeout: float = DOWNLOAD_TIMEOUT_SECONDS, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically and verify its md5 and/or SHA-256.

    The parent directory of ``dest`` is created if needed. The data are written to a temporary file
    next to ``dest`` and renamed to ``dest`` only when the download is complete and the checksum
    matches, so ``dest`` is either absent or complete.

    Args:
        url: source address; ``file://`` URLs work too (used by the tests).
        dest: final path of the file.
        md5: expected hex md5 of the downloaded bytes, or None to skip the check.
        sha256: expected hex SHA-256 of the downloaded bytes, the full 64 digits or a prefix of at least
            8 (as in torch.hub file names such as ``vgg19-dcbb9e9d.pth``), or None to skip the check.
        timeout: socket timeout in seconds for connecting and for each read.
        progress: show a tqdm progress bar on an interactive stderr.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: the download failed (no network, HTTP error, timeout, cannot write ``dest``).
        DataError: the downloaded bytes do not have the expected md5 or SHA-256 (nothing is kept).
        ValueError: ``sha256`` is not 8 to 64 hex digits (checked before downloading).
    """
    dest = Path(dest)
    if sha256 is not None:
        checked_sha256(sha256)  # before any network traffic
    digests = {name: hashlib.new(name) for name, want in (("md5", md5), ("sha256", sha256)) if want is not None}
    tmp_name = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            with os.fdopen(fd, "wb") as out, _progress_bar(total, dest.name, progress) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    for h in digests.values():
                        h.update(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException, ValueError) as e:  # URLError, timeouts, bad URL
        _remove_quietly(tmp_name)
        raise DownloadError(f"cannot download {url}: {_one_line(e)}") from e
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    for name, want in (("md5", md5), ("sha256", sha256)):
        if want is None:
            continue
        digest = digests[name].hexdigest()
        if not (sha256_matches(digest, want) if name == "sha256" else digest == want.lower()):
            _remove_quietly(tmp_name)
            expected = want if len(want) == len(digest) else f"{want}..."
            raise DataError(f"download of {url} is corrupt ({name} {digest}, expected {expected}); nothing "
                            f"was saved; retry, or put a good copy of {dest.name} in {dest.parent}")
    os.replace(tmp_name, dest)
    log.info("downloaded %s to %s", url, dest)
    return dest


def resolve_root(dataset: str, root: Optional[str], need: str) -> Path:
    """The data directory of a named dataset, checked for a usable value.

    If ``root`` does not exist but the same path with ``-`` replaced by ``_`` in its last component
    does (``$IMAGEGEN_DATA/cifar10-jpg`` → ``.../cifar10_jpg``), that one is used.

    Args:
        dataset: dataset name, used in messages.
        root: the directory from ``--data-root`` or ``$IMAGEGEN_DATA/<dataset>``; may not exist yet.
        need: what the directory must hold, for messages (e.g. ``the four IDX .gz files``).

    Returns:
        The directory (it may not exist; the caller decides whether to download into it).

    Raises:
        DataError: ``root`` is None (the message says to pass ``--data-root`` or set ``IMAGEGEN_DATA``).
    """
    if not root:
        raise DataError(f"{dataset}: no data directory; pass --data-root DIR holding {need} "
                        f"(or where they may be downloaded), or set IMAGEGEN_DATA to a directory "
                        f"with a {dataset}/ subfolder")
    path = Path(root).expanduser()
    if not path.exists():
        alt = path.with_name(path.name.replace("-", "_"))
        if alt != path and alt.exists():
            return alt
    return path


def fetch(dataset: str, directory: Path, resources: list[Resource], *, download: bool,
          need: str) -> list[Path]:
    """Download missing files of a named dataset into ``directory``.

    Args:
        dataset: dataset name, used in messages.
        directory: the dataset's data directory (created if needed).
        resources: the missing files.
        download: whether downloading is allowed.
        need: what ``--data-root`` must hold, for the message (e.g. ``the four IDX .gz files``).

    Returns:
        The paths of the downloaded, checksum-verified files, in the order of ``resources``.

    Raises:
        DataError: downloading is not allowed or failed (one line naming the missing files, the
            directory to put them in and where to get them), or a download was corrupt.
    """
    names = ", ".join(r.filename for r in resources)
    bases = {r.url[: len(r.url) - len(r.filename)] if r.url.endswith(r.filename) else r.url
             for r in resources}
    source = next(iter(bases)) if len(resources) > 1 and len(bases) == 1 else " and ".join(
        r.url for r in resources)
    hint = (f"{dataset}: missing {names} in {directory}; download "
            f"{'it' if len(resources) == 1 else 'them'} from {source} or pass --data-root DIR holding {need}")
    if not download:
        raise DataError(hint + " (downloading is disabled)")
    paths = []
    for r in resources:
        log.warning("%s: %s not found in %s; downloading %s", dataset, r.filename, directory, r.url)
        try:
            paths.append(download_file(r.url, directory / r.filename, r.md5))
        except DownloadError as e:
            raise DataError(f"{hint} (download failed: {_one_line(e.__cause__ or e)})") from e
    return paths


def _progress_bar(total: Optional[int], desc: str, enabled: bool):
    from tqdm import tqdm

    # disable=None: shown only when stderr is a terminal
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False,
                disable=None if enabled else True)


def _remove_quietly(path: Optional[str]) -> None:
    if path:
        try:
            os.remove(path)
        except OSError:
            pass


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
