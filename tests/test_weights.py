"""imagegen.weights: finding pretrained weights (path, variable, cache), checksum-verified downloads,
one-line errors, and the model-zoo layout of VGG-19. No network: downloads come from file:// URLs or a
http.server on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading

import pytest
import torch
from torch import nn

from imagegen.data.download import download_file
from imagegen.errors import CheckpointError, ImagegenError, WeightsError
from imagegen.metrics.inception import build_inception, download_inception_weights, find_inception_weights
from imagegen.weights import (INCEPTION, VGG19, WeightsSpec, find_weights, get_weights_spec, hub_hash_prefix,
                              list_weights, locate_weights, weights_dir, weights_sha256)

PAYLOAD = b"not really weights, but bytes with a known hash\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()

# torchvision's VGG-19 (configuration "E"): conv widths, "M" = 2x2 max pool; each conv is followed by a
# ReLU, so conv i of the Sequential ``features`` sits at index i, ReLU at i + 1.
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
#: Parameter count of torchvision's VGG19_Weights.IMAGENET1K_V1 (its "num_params" metadata).
VGG19_NUM_PARAMS = 143_667_240


@pytest.fixture(autouse=True)
def _no_weights_env(monkeypatch, tmp_path):
    """Each test starts without weight variables and with an empty private cache root."""
    for spec in (INCEPTION, VGG19):
        monkeypatch.delenv(spec.env_var, raising=False)
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def source(tmp_path):
    """A small file to download, and a spec naming it by a file:// URL."""
    src = tmp_path / "server" / "tiny-weights.pth"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    spec = WeightsSpec(name="tiny", filename="tiny-weights.pth", url=src.as_uri(), sha256=SHA,
                       env_var="IMAGEGEN_TINY_WEIGHTS", description="tiny test weights", flag="--tiny-weights")
    return src, spec


def _files(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---- registry and hash convention -------------------------------------------------------------
def test_registered_specs_follow_the_torch_hub_naming_convention():
    assert {"inception", "vgg19"} <= set(list_weights())
    assert get_weights_spec("inception") is INCEPTION and get_weights_spec("vgg19") is VGG19
    assert INCEPTION.filename == "pt_inception-2015-12-05-6726825d.pth"
    assert INCEPTION.env_var == "IMAGEGEN_INCEPTION_WEIGHTS" and INCEPTION.flag == "--inception-weights"
    assert VGG19.url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert VGG19.env_var == "IMAGEGEN_VGG19_WEIGHTS"
    for spec in (INCEPTION, VGG19):
        assert spec.url.endswith("/" + spec.filename)
        # the hash torch.hub.load_state_dict_from_url(check_hash=True) would check is the spec's sha256
        assert hub_hash_prefix(spec.filename) == torch.hub.HASH_REGEX.search(spec.filename).group(1) == spec.sha256
    assert hub_hash_prefix("resnet18-5c106cde.pth") == "5c106cde"
    assert hub_hash_prefix("classifier.pt") is None and hub_hash_prefix("a-abc.pth") is None  # < 8 digits
    with pytest.raises(ImagegenError, match="unknown weights 'vgg16'; known: .*inception.*vgg19"):
        get_weights_spec("vgg16")


def test_spec_validation():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VGG19.url = "x"  # type: ignore[misc]
    ok = dict(name="n", filename="n-0123abcd.pth", url="file:///n", env_var="N", description="n")
    assert WeightsSpec(**ok, sha256="0123ABCD").sha256 == "0123abcd"  # stored lower-case
    assert WeightsSpec(**ok, sha256="0123abcd" + "0" * 56).matches("0123abcd" + "0" * 56)
    for bad in ("0123abc", "0123abcz", "0" * 65):
        with pytest.raises(ValueError, match="8 to 64 hex digits"):
            WeightsSpec(**ok, sha256=bad)
    with pytest.raises(ValueError, match="contradicts the hash 0123abcd"):
        WeightsSpec(**ok, sha256="ffffffff")
    with pytest.raises(ValueError, match="plain file name"):
        WeightsSpec(**{**ok, "filename": "dir/n.pth"}, sha256="ffffffff")
    assert INCEPTION.matches("6726825d" + "0" * 56) and not INCEPTION.matches("6726825e" + "0" * 56)


def test_prefix_check_agrees_with_torch_hub(tmp_path, source):
    """Our SHA-256 (prefix) check accepts and rejects exactly what torch.hub.download_url_to_file does."""
    src, _ = source
    for i, expected in enumerate([SHA, SHA[:8], SHA[:12], "0" * 8, SHA[:7] + ("0" if SHA[7] != "0" else "1")]):
        try:
            torch.hub.download_url_to_file(src.as_uri(), str(tmp_path / f"hub{i}"), hash_prefix=expected,
                                           progress=False)
            hub_ok = True
        except RuntimeError:
            hub_ok = False
        try:
            download_file(src.as_uri(), tmp_path / f"ours{i}", sha256=expected, progress=False)
            ours_ok = True
        except ImagegenError:
            ours_ok = False
        assert hub_ok == ours_ok == (i < 3), expected
    with pytest.raises(ValueError, match="8 to 64 hex digits"):  # checked before downloading
        download_file(src.as_uri(), tmp_path / "never", sha256="abc", progress=False)
    assert not (tmp_path / "never").exists()


# ---- finding ---------------------------------------------------------------------------------------
def test_precedence_path_then_variable_then_cache(tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit.pth", tmp_path / "env.pth"
    explicit.write_bytes(b"1")
    env.write_bytes(b"2")
    cached = tmp_path / "cache" / "weights" / VGG19.filename  # $IMAGEGEN_CACHE (fixture) / weights
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"3")
    assert weights_dir() == cached.parent
    monkeypatch.setenv("IMAGEGEN_VGG19_WEIGHTS", str(env))
    assert find_weights("vgg19", path=explicit) == explicit
    assert find_weights(VGG19) == env
    monkeypatch.delenv("IMAGEGEN_VGG19_WEIGHTS")
    assert find_weights("vgg19") == cached
    other = tmp_path / "other-cache"
    assert locate_weights("vgg19", cache_dir=other) is None  # an explicit cache root beats $IMAGEGEN_CACHE
    (other / "weights").mkdir(parents=True)
    (other / "weights" / VGG19.filename).write_bytes(b"4")
    assert find_weights("vgg19", cache_dir=other) == other / "weights" / VGG19.filename


def test_a_given_path_must_exist(tmp_path, monkeypatch):
    good = tmp_path / "good.pth"
    good.write_bytes(b"x")
    monkeypatch.setenv("IMAGEGEN_INCEPTION_WEIGHTS", str(good))
    with pytest.raises(WeightsError, match=r"^--inception-weights: no such file .*nope\.pth; expected "
                                           r"pt_inception-2015-12-05-6726825d\.pth"):
        find_weights("inception", path=tmp_path / "nope.pth")  # no fallback to the valid variable
    monkeypatch.setenv("IMAGEGEN_INCEPTION_WEIGHTS", str(tmp_path / "gone.pth"))
    with pytest.raises(WeightsError, match=r"^\$IMAGEGEN_INCEPTION_WEIGHTS: no such file .*gone\.pth"):
        find_weights("inception")
    monkeypatch.setenv("IMAGEGEN_INCEPTION_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"\(a directory\)"):
        find_weights("inception")


def test_missing_file_is_one_line_naming_file_url_and_where_to_put_it(tmp_path):
    for spec, flag in ((INCEPTION, "--inception-weights"), (VGG19, None)):
        with pytest.raises(WeightsError) as info:
            find_weights(spec.name)
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"no {spec.description} found: {spec.filename} is not in ")
        for part in (spec.url, f"${spec.env_var}", str(tmp_path / "cache" / "weights")):
            assert part in msg
        assert (flag in msg) if flag else ("--" not in msg)
    assert issubclass(WeightsError, CheckpointError) and issubclass(WeightsError, ImagegenError)
    assert not (tmp_path / "cache").exists()  # looking does not create the cache


# ---- downloading -----------------------------------------------------------------------------------
def test_download_verified_into_the_cache(tmp_path, source):
    src, spec = source
    cache = tmp_path / "c"
    with pytest.raises(WeightsError, match="no tiny test weights found"):
        find_weights(spec, cache_dir=cache)  # download=False never touches the network
    assert not cache.exists()
    got = find_weights(spec, cache_dir=cache, download=True, progress=False)
    assert got == cache / "weights" / spec.filename and got.read_bytes() == PAYLOAD
    assert _files(cache / "weights") == [spec.filename]  # no temporary file left
    assert weights_sha256(got) == SHA
    src.unlink()
    assert find_weights(spec, cache_dir=cache, download=True) == got  # found in the cache: no download
    short = dataclasses.replace(spec, url=got.as_uri(), sha256=SHA[:8])  # a torch.hub-style prefix
    assert find_weights(short, cache_dir=tmp_path / "c2", download=True, progress=False).read_bytes() == PAYLOAD


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, source):
    _, spec = source
    bad = dataclasses.replace(spec, sha256="0" * 64 if SHA[0] != "0" else "f" * 64)
    with pytest.raises(WeightsError) as info:
        find_weights(bad, cache_dir=tmp_path / "c", download=True, progress=False)
    msg = str(info.value)
    assert "\n" not in msg and "corrupt" in msg and SHA in msg and "--tiny-weights" in msg
    assert _files(tmp_path / "c" / "weights") == []
    with pytest.raises(WeightsError, match=r"^cannot download tiny test weights from .*absent\.pth .*put a copy "
                                           r"of tiny-weights\.pth in"):
        find_weights(dataclasses.replace(spec, url=(tmp_path / "absent.pth").as_uri()), cache_dir=tmp_path / "c",
                     download=True, progress=False)
    assert _files(tmp_path / "c" / "weights") == []


@pytest.fixture
def http_root(tmp_path):
    """A quiet http.server on 127.0.0.1 serving tmp_path/www; yields (root dir, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_download_over_http(tmp_path, http_root, source):
    root, base = http_root
    _, spec = source
    (root / spec.filename).write_bytes(PAYLOAD)
    spec = dataclasses.replace(spec, url=f"{base}/{spec.filename}")
    got = find_weights(spec, cache_dir=tmp_path / "c", download=True, timeout=10, progress=False)
    assert got.read_bytes() == PAYLOAD
    missing = dataclasses.replace(spec, url=f"{base}/absent.pth")
    with pytest.raises(WeightsError, match="cannot download .*HTTP Error 404"):
        find_weights(missing, cache_dir=tmp_path / "c2", download=True, timeout=10, progress=False)
    assert _files(tmp_path / "c2" / "weights") == []


# ---- the Inception wrappers go through imagegen.weights --------------------------------------------
def test_inception_wrappers_use_the_helper(tmp_path, monkeypatch, source):
    src, _ = source
    assert find_inception_weights(None, tmp_path / "c") is None
    with pytest.raises(WeightsError, match="^no Inception weights .*--inception-weights or "
                                           r"\$IMAGEGEN_INCEPTION_WEIGHTS"):
        build_inception(cache=tmp_path / "c")
    with pytest.raises(WeightsError, match=r"corrupt \(sha256 [0-9a-f]{64}, expected 6726825d\.\.\.\)"):
        download_inception_weights(tmp_path / "c", url=src.as_uri())  # not the real file: rejected
    assert _files(tmp_path / "c" / "weights") == []
    monkeypatch.setenv("IMAGEGEN_INCEPTION_WEIGHTS", str(src))
    assert find_inception_weights(None, tmp_path / "c") == src


# ---- VGG-19 in the PyTorch model-zoo layout --------------------------------------------------------
def vgg19_layout(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of torchvision's ``vgg19().state_dict()``, written out by hand."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, c_in = 0, 3
    for v in VGG19_CFG:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"], shapes[f"features.{index}.bias"] = (v, c_in, 3, 3), (v,)
        index, c_in = index + 2, v  # conv, ReLU
    for i, (n_out, n_in) in zip((0, 3, 6), ((4096, 512 * 7 * 7), (4096, 4096), (num_classes, 4096))):
        shapes[f"classifier.{i}.weight"], shapes[f"classifier.{i}.bias"] = (n_out, n_in), (n_out,)
    return shapes


def vgg19_module() -> nn.Module:
    """The same network as torchvision's VGG-19 (modules only; build it on the meta device)."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = v
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))
    return model


def test_vgg19_model_zoo_file_is_found_and_loads(tmp_path, monkeypatch):
    """A VGG-19 state dict with the real key names and shapes, stored small.

    The real file is ~548 MB (143.7 M float32). Each tensor here is a random row expanded to the full
    shape (stride 0 in the leading dimensions): torch.save writes only the underlying storage, so the
    file is ~150 kB and loading it allocates no more, while names, shapes and dtypes are those of the
    real file. The module the shapes are checked against is built on the meta device (no memory).
    """
    layout = vgg19_layout()
    assert sum(torch.Size(s).numel() for s in layout.values()) == VGG19_NUM_PARAMS
    conv = sorted(int(k.split(".")[1]) for k in layout if k.startswith("features.") and k.endswith(".weight"))
    assert conv == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    with torch.device("meta"):
        reference = vgg19_module()
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == layout

    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s[-1], generator=gen).expand(s) for k, s in layout.items()}
    path = tmp_path / "cache" / "weights" / VGG19.filename  # the cache slot under $IMAGEGEN_CACHE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    assert path.stat().st_size < 1_000_000

    assert find_weights("vgg19") == path
    monkeypatch.setenv("IMAGEGEN_VGG19_WEIGHTS", str(path))
    found = find_weights("vgg19")
    loaded = torch.load(found, map_location="cpu", weights_only=True)
    assert list(loaded) == list(layout)
    assert {k: tuple(v.shape) for k, v in loaded.items()} == layout
    assert all(v.dtype == torch.float32 for v in loaded.values())
    torch.testing.assert_close(loaded["classifier.6.weight"][999], state["classifier.6.weight"][999])
    reference.load_state_dict(loaded, strict=True, assign=True)  # names and shapes fit the network
    assert not VGG19.matches(weights_sha256(found))  # random weights are not the standard file
