"""Pretrained weights files: one place that finds them, downloads them and says what is missing.

Every pretrained network of the toolkit (the FID Inception now; VGG-19 for style transfer and
perceptual losses next) names its file with a :class:`WeightsSpec` and gets the path from
:func:`find_weights`, which looks, in this order, at

1. an explicit path (a CLI flag such as ``--inception-weights``): it must exist;
2. the spec's environment variable (e.g. ``$IMAGEGEN_INCEPTION_WEIGHTS``): it must exist if set;
3. the cache: ``<cache>/weights/<filename>``, where ``<cache>`` is ``$IMAGEGEN_CACHE`` or
   ``~/.cache/imagegen`` (:func:`imagegen.metrics.cache.cache_dir`, shared with the classifiers and
   reference statistics);
4. the network, only when the caller allows it (``download=True``): the file is downloaded into the
   cache with :func:`imagegen.data.download.download_file` (a temporary file, renamed with
   :func:`os.replace` only if its SHA-256 matches; deleted otherwise);

and otherwise raises :class:`~imagegen.errors.WeightsError` with one line naming the file, its URL and
where to put it.

Checksums: ``WeightsSpec.sha256`` is a full hex SHA-256 or a prefix of at least 8 hex digits. The two
registered files carry only a prefix, taken from their names by torch.hub's convention
(``filename-<sha256 prefix>.ext``, ``torch.hub.HASH_REGEX``; ``load_state_dict_from_url(check_hash=True)``
and ``download_url_to_file(hash_prefix=...)`` accept a file whose hex digest starts with it). Only
downloads are verified here: a file given by path, variable or found in the cache is returned as it is,
and the caller decides. VGG-19's ``imagenet`` encoder refuses a file that is not the standard one
(:func:`verify_weights`, :func:`imagegen.nn.vgg.load_vgg19`); the FID Inception records the file's full
digest (:func:`weights_sha256`) in the protocol and warns when it is not the standard one.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Optional, Union

from .data.download import (DOWNLOAD_TIMEOUT_SECONDS, DownloadError, checked_sha256, download_file,
                            sha256_matches, sha256sum)
from .errors import ConfigError, DataError, WeightsError

#: torch.hub's pattern for the hash in a file name (``torch.hub.HASH_REGEX``): the first ``-<hex>.``.
HUB_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    """A known pretrained weights file.

    Attributes:
        name: registry key, e.g. ``inception`` or ``vgg19``.
        filename: the file's name, also its name in the cache (``<cache>/weights/<filename>``).
        url: canonical download address (``http(s)://``; ``file://`` works too).
        sha256: expected SHA-256 of the file: the full 64 hex digits, or a prefix of at least 8
            (torch.hub's convention; stored lower-case). If ``filename`` carries a torch.hub hash
            (``name-<hex>.ext``), it must agree with this value.
        env_var: environment variable that may hold the file's path.
        description: what the file is, as a noun phrase for messages (e.g. ``Inception weights (FID/IS)``).
        how_to_get: an optional extra hint appended to the "missing" message.
        flag: the CLI option that takes the file's path (e.g. ``--inception-weights``), or ``""``.

    Raises:
        ValueError: malformed ``sha256``, a ``filename`` with a directory part, or a file-name hash
            that contradicts ``sha256`` (programming errors, raised at definition time).
    """

    name: str
    filename: str
    url: str
    sha256: str
    env_var: str
    description: str
    how_to_get: str = ""
    flag: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.filename or os.path.basename(self.filename) != self.filename:
            raise ValueError(f"weights {self.name!r}: filename {self.filename!r} must be a plain file name")
        object.__setattr__(self, "sha256", checked_sha256(self.sha256))
        named = hub_hash_prefix(self.filename)
        if named is not None and not (self.sha256.startswith(named) or named.startswith(self.sha256)):
            raise ValueError(f"weights {self.name!r}: sha256 {self.sha256} contradicts the hash {named} in "
                             f"the file name {self.filename}")

    def matches(self, digest: str) -> bool:
        """Whether a file's hex SHA-256 ``digest`` is this spec's (full match or prefix match)."""
        return sha256_matches(digest, self.sha256)


def hub_hash_prefix(filename: str) -> Optional[str]:
    """The SHA-256 prefix in a torch.hub-style file name (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``).

    Uses torch.hub's own pattern (the first ``-<hex digits>.`` in the name, as
    ``load_state_dict_from_url(check_hash=True)`` does), and returns it only if it has at least 8
    digits, the minimum the convention promises; else None.
    """
    m = HUB_HASH_REGEX.search(filename)
    return m.group(1) if m and len(m.group(1)) >= 8 else None


_REGISTRY: dict[str, WeightsSpec] = {}


def register_weights(spec: WeightsSpec) -> WeightsSpec:
    """Add ``spec`` to the registry under ``spec.name`` and return it.

    Raises:
        ValueError: another spec is registered under that name.
    """
    if _REGISTRY.get(spec.name, spec) != spec:
        raise ValueError(f"weights name {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_weights_spec(name: str) -> WeightsSpec:
    """The registered spec called ``name``.

    Raises:
        ConfigError: no such spec (the message lists the known names).
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown weights {name!r}; known: {', '.join(list_weights())}")
    return _REGISTRY[name]


def list_weights() -> list[str]:
    """Names of the registered weights files, sorted."""
    return sorted(_REGISTRY)


INCEPTION = register_weights(WeightsSpec(
    name="inception",
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d",
    env_var="IMAGEGEN_INCEPTION_WEIGHTS",
    description="Inception weights (FID/IS)",
    how_to_get="it is pytorch-fid's port of TF inception-2015-12-05; `imagegen evaluate --extractor inception` "
               "downloads it",
    flag="--inception-weights",
))

VGG19 = register_weights(WeightsSpec(
    name="vgg19",
    filename="vgg19-dcbb9e9d.pth",
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    sha256="dcbb9e9d",
    env_var="IMAGEGEN_VGG19_WEIGHTS",
    description="VGG-19 ImageNet weights",
    how_to_get="it is torchvision's vgg19(weights='IMAGENET1K_V1') file (torch.hub keeps it in "
               "~/.cache/torch/hub/checkpoints/)",
))


def _spec(name_or_spec: Union[str, WeightsSpec]) -> WeightsSpec:
    return name_or_spec if isinstance(name_or_spec, WeightsSpec) else get_weights_spec(name_or_spec)


def weights_dir(cache_dir: Optional[str | os.PathLike] = None) -> Path:
    """Where downloaded weights live: ``<cache root>/weights`` (root: ``cache_dir``, else
    ``$IMAGEGEN_CACHE``, else ``~/.cache/imagegen``). Not created here."""
    from .metrics.cache import cache_dir as cache_root  # here, not at import: imagegen.metrics imports this module

    return cache_root(cache_dir) / "weights"


def _where(spec: WeightsSpec) -> str:
    return " or ".join(x for x in (spec.flag, f"${spec.env_var}") if x)


def locate_weights(name_or_spec: Union[str, WeightsSpec], path: Optional[str | os.PathLike] = None,
                   cache_dir: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """Steps 1-3 of :func:`find_weights` without downloading: the explicit ``path``, else
    ``$<env_var>``, else ``<cache>/weights/<filename>`` if it exists, else None.

    Args:
        name_or_spec: a registered name (``inception``, ``vgg19``) or a :class:`WeightsSpec`.
        path: a path given explicitly (e.g. by a CLI flag); empty or None means not given.
        cache_dir: cache root (default ``$IMAGEGEN_CACHE`` or ``~/.cache/imagegen``).

    Returns:
        The file's path, or None if it is in none of these places.

    Raises:
        WeightsError: ``path`` or the environment variable names something that is not a file.
        ConfigError: unknown weights name.
    """
    spec = _spec(name_or_spec)
    for given, what in ((path, spec.flag or "path"), (os.environ.get(spec.env_var), f"${spec.env_var}")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise WeightsError(f"{what}: no such file {given}{' (a directory)' if p.is_dir() else ''}; "
                                   f"expected {spec.filename}, the {spec.description} from {spec.url}")
            return p
    cached = weights_dir(cache_dir) / spec.filename
    return cached if cached.is_file() else None


def download_weights(name_or_spec: Union[str, WeightsSpec], cache_dir: Optional[str | os.PathLike] = None, *,
                     timeout: float = DOWNLOAD_TIMEOUT_SECONDS, progress: bool = True) -> Path:
    """Download a weights file into ``<cache>/weights/<filename>`` and verify its SHA-256.

    The bytes go to a temporary file next to the destination, which is renamed into place with
    :func:`os.replace` only when the checksum matches and is deleted otherwise, so the cache never holds
    a partial or wrong file. An existing file of that name is replaced.

    Args:
        name_or_spec: a registered name or a :class:`WeightsSpec`.
        cache_dir: cache root (default ``$IMAGEGEN_CACHE`` or ``~/.cache/imagegen``).
        timeout: socket timeout in seconds (connect and each read).
        progress: tqdm progress bar on an interactive stderr.

    Returns:
        The path of the verified file.

    Raises:
        WeightsError: no network, HTTP or file-system error, or a checksum mismatch (one line, saying
            where to put a copy instead).
        ConfigError: unknown weights name.
    """
    spec = _spec(name_or_spec)
    dest = weights_dir(cache_dir) / spec.filename
    instead = (f"put a copy of {spec.filename} in {dest.parent}, or point {_where(spec)} at one (its SHA-256 starts "
               f"with {spec.sha256})")
    try:
        return download_file(spec.url, dest, sha256=spec.sha256, timeout=timeout, progress=progress)
    except DownloadError as e:
        cause = " ".join(str(e.__cause__ or e).split()) or type(e.__cause__ or e).__name__
        raise WeightsError(f"cannot download {spec.description} from {spec.url} ({cause}); {instead}") from None
    except DataError as e:  # checksum mismatch; download_file has deleted the temporary file
        raise WeightsError(f"{spec.description}: {e}; or point {_where(spec)} at a good copy") from None


def find_weights(name_or_spec: Union[str, WeightsSpec], path: Optional[str | os.PathLike] = None,
                 cache_dir: Optional[str | os.PathLike] = None, download: bool = False, *,
                 timeout: float = DOWNLOAD_TIMEOUT_SECONDS, progress: bool = True) -> Path:
    """Find a pretrained weights file: explicit ``path``, ``$<env_var>``, the cache, then (only if
    ``download``) the network.

    Args:
        name_or_spec: a registered name (``inception``, ``vgg19``) or a :class:`WeightsSpec`.
        path: a path given explicitly (e.g. by a CLI flag); it must exist.
        cache_dir: cache root (default ``$IMAGEGEN_CACHE`` or ``~/.cache/imagegen``); the file is looked
            for, and downloaded to, ``<cache_dir>/weights/<filename>``.
        download: download the file (checksum-verified) when it is nowhere local.
        timeout: socket timeout in seconds for the download.
        progress: tqdm progress bar for the download on an interactive stderr.

    Returns:
        The path of the file. Files found locally are not checksum-verified (use
        :func:`verify_weights`, or :func:`weights_sha256` and :meth:`WeightsSpec.matches`).

    Raises:
        WeightsError: ``path`` or the environment variable names no file; the file is missing and
            ``download`` is False (one line: the file, its URL and checksum, the directory to put it in,
            the flag and variable that may point to it); or the download failed or was corrupt.
        ConfigError: unknown weights name.
    """
    spec = _spec(name_or_spec)
    found = locate_weights(spec, path, cache_dir)
    if found is not None:
        return found
    if download:
        return download_weights(spec, cache_dir, timeout=timeout, progress=progress)
    directory = weights_dir(cache_dir)
    hint = f"; {spec.how_to_get}" if spec.how_to_get else ""
    raise WeightsError(f"no {spec.description} found: {spec.filename} is not in {directory}; download "
                       f"{spec.url} there, or point {_where(spec)} at a copy (its SHA-256 starts with "
                       f"{spec.sha256}){hint}")


_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> digest, so a process hashes a file once


def verify_weights(name_or_spec: Union[str, WeightsSpec], path: str | os.PathLike, *, instead: str = "") -> str:
    """Check that a local file is the spec's standard file: its SHA-256 must be (or start with) the spec's.

    Hashing reads the whole file (VGG-19: 548 MB, about a second); a file of unchanged path, size and
    modification time is hashed once per process.

    Args:
        name_or_spec: a registered name or a :class:`WeightsSpec`.
        path: the file, as found by :func:`find_weights`.
        instead: an alternative for the message, e.g. how to use a non-standard file on purpose.

    Returns:
        The file's full hex SHA-256.

    Raises:
        WeightsError: the file cannot be read, or its checksum is not the spec's (one line naming the file,
            both checksums, where to get the standard file and ``instead``).
    """
    spec = _spec(name_or_spec)
    try:
        st = os.stat(path)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    digest = _VERIFIED.get(key) or weights_sha256(path)
    if not spec.matches(digest):
        raise WeightsError(f"{path} is not the standard {spec.filename}: its SHA-256 is {digest[:12]}..., the "
                           f"{spec.description} file's starts with {spec.sha256} (corrupt or other weights); "
                           f"replace it with a fresh download of {spec.url}{f', or {instead}' if instead else ''}")
    _VERIFIED[key] = digest
    return digest


def weights_sha256(path: str | os.PathLike) -> str:
    """Full hex SHA-256 (64 digits) of a weights file, as recorded in protocols.

    Raises:
        WeightsError: the file cannot be read.
    """
    try:
        return sha256sum(path)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
