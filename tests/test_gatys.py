"""Gatys et al. style transfer: the VGG-19 encoder (torchvision layout, random weights, early stop), the
losses (Gram normalisation of Eq. 3-5), the optimisation (content/style losses decrease, multi-scale,
colour preservation, several styles) and ``imagegen stylize``. Narrow random encoders and images of a few
dozen pixels keep every test to about a second on one CPU thread."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from imagegen.errors import ConfigError, WeightsError
from imagegen.nn.vgg import LAYERS, VGG19_WIDTHS, VGG19Encoder, load_vgg19, pools_before
from imagegen.style.gatys import (content_loss, gram_matrix, match_color_histogram, rgb_to_yiq, style_layer_loss,
                                  stylize_gatys, total_variation)
from imagegen.weights import VGG19, WeightsSpec, weights_sha256

NARROW = (4, 8, 8, 16, 16)
#: conv indices of torchvision's vgg19().features
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


@pytest.fixture(autouse=True)
def _no_weights(monkeypatch, tmp_path):
    """No VGG-19 file anywhere: a private empty cache and no variable."""
    monkeypatch.delenv(VGG19.env_var, raising=False)
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors in Python loops (conftest.py)


@pytest.fixture(scope="module")
def narrow():
    return load_vgg19("random", widths=NARROW, seed=0)


def _image(h: int, w: int, seed: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """A smooth random RGB image [1, 3, h, w] in [lo, hi] (upsampled noise: it has structure)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, max(2, h // 4), max(2, w // 4), generator=g)
    img = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return lo + (hi - lo) * img


def _vgg19_file_state(seed: int = 0, drop: str = "", rename: tuple[str, str] = ("", "")) -> dict:
    """A state dict with torchvision's vgg19 key names and shapes (features and classifier), stored small:
    each tensor is a random row expanded to the full shape (torch.save writes only the storage)."""
    shapes: dict[str, tuple[int, ...]] = {}
    c_in, k = 3, 0
    for width, n in zip(VGG19_WIDTHS, (2, 2, 4, 4, 4)):
        for _ in range(n):
            idx = CONV_INDICES[k]
            shapes[f"features.{idx}.weight"], shapes[f"features.{idx}.bias"] = (width, c_in, 3, 3), (width,)
            c_in, k = width, k + 1
    for i, (n_out, n_in) in zip((0, 3, 6), ((4096, 512 * 7 * 7), (4096, 4096), (1000, 4096))):
        shapes[f"classifier.{i}.weight"], shapes[f"classifier.{i}.bias"] = (n_out, n_in), (n_out,)
    gen = torch.Generator().manual_seed(seed)
    state = {key.replace(*rename) if rename[0] else key: (torch.randn(s[-1], generator=gen) * 0.05).expand(s)
             for key, s in shapes.items() if key != drop}
    return state


# ---- the encoder -----------------------------------------------------------------------------------------
def test_imagenet_layout_file_loads_into_the_encoder(tmp_path, monkeypatch):
    """A randomly initialised file of torchvision's layout, in the cache slot, loads strictly (classifier
    keys ignored), through ``imagenet`` and ``auto`` (checksum-verified: here against a spec that carries
    the file's own SHA-256) and as a path; the state dict is exactly torchvision's features."""
    state = _vgg19_file_state()
    path = tmp_path / "cache" / "weights" / "vgg19-test.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    assert path.stat().st_size < 1_000_000
    spec = WeightsSpec(name="vgg19-test", filename=path.name, url="https://example.invalid/vgg19-test.pth",
                       sha256=weights_sha256(path), env_var="IMAGEGEN_VGG19_TEST_WEIGHTS",
                       description="test VGG-19 weights")
    monkeypatch.setattr("imagegen.nn.vgg.VGG19", spec)
    for weights in ("imagenet", "auto", str(path)):
        enc = load_vgg19(weights)
        assert enc.weights_path == path and "random" not in enc.source
        sd = enc.features.state_dict()
        assert set(sd) == {k[len("features."):] for k in state if k.startswith("features.")}
        assert sorted({int(k.split(".")[0]) for k in sd}) == CONV_INDICES
        torch.testing.assert_close(sd["34.weight"], state["features.34.weight"])
        assert not any(p.requires_grad for p in enc.parameters()) and not enc.training
    assert set(enc.state_dict()) == set(f"features.{k}" for k in sd)  # no extra keys (mean/std not persistent)
    assert LAYERS[0] == "conv1_1" and LAYERS[22] == "relu4_2" and LAYERS[36] == "pool5"
    assert [i for i, n in enumerate(LAYERS) if n.startswith("conv")] == CONV_INDICES


def test_imagenet_refuses_a_file_with_another_checksum(tmp_path, capsys):
    """A file of the right layout but not the model zoo's bytes, in the standard slot: ``imagenet`` and
    ``auto`` refuse it with one line naming both checksums and the fix; by path it loads as other weights."""
    path = tmp_path / "cache" / "weights" / VGG19.filename
    path.parent.mkdir(parents=True)
    torch.save(_vgg19_file_state(), path)
    digest = weights_sha256(path)
    for weights in ("imagenet", "auto"):
        with pytest.raises(WeightsError) as e:
            load_vgg19(weights)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"{path} is not the standard {VGG19.filename}")
        assert f"SHA-256 is {digest[:12]}..." in msg and "starts with dcbb9e9d" in msg and VGG19.url in msg
        assert f"give the file's path as the encoder ({path})" in msg
    assert load_vgg19(path).weights_path == path
    content, style = _save(tmp_path / "c.png", 30, 40, 0), _save(tmp_path / "s.png", 36, 36, 1)
    out = tmp_path / "o.png"
    code, _, err = run_cli(["stylize", "--content", content, "--style", style, "--encoder", "imagenet",
                            "--steps", "1", "--size", "32", "--no-progress", "--out", out], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "is not the standard vgg19-dcbb9e9d.pth" in lines[0], err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["missing", "renamed", "shape", "not_a_state_dict", "garbage"])
def test_wrong_layout_file_is_a_one_line_config_error(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "missing":
        torch.save(_vgg19_file_state(drop="features.10.weight"), path)
    elif kind == "renamed":
        torch.save(_vgg19_file_state(rename=("features.", "backbone.")), path)
    elif kind == "shape":
        state = _vgg19_file_state()
        state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
        torch.save(state, path)
    elif kind == "not_a_state_dict":
        torch.save([torch.zeros(3)], path)
    else:
        path.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError) as e:
        load_vgg19(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    expected = {"missing": "missing keys features.10.weight", "renamed": "unexpected keys backbone.",
                "shape": "features.0.weight has shape (64, 1, 3, 3)", "not_a_state_dict": "not a state dict",
                "garbage": "cannot read VGG-19 weights"}[kind]
    assert expected in msg


def test_missing_imagenet_weights_and_bad_paths():
    with pytest.raises(WeightsError, match=f"no VGG-19 ImageNet weights found: {VGG19.filename}"):
        load_vgg19("imagenet")
    assert "random" in load_vgg19("auto", widths=NARROW).source  # nothing found: random weights
    with pytest.raises(ConfigError, match="no such file"):
        load_vgg19("nowhere/vgg.pth")
    with pytest.raises(ConfigError, match="standard"):
        load_vgg19("imagenet", widths=NARROW)


def test_encoder_returns_requested_layers_and_stops_early(narrow):
    img = _image(32, 48, seed=1)
    ran: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: ran.append(k)) for k, m in enumerate(narrow.features)]
    try:
        out = narrow(img, ["relu4_2", "relu1_1", "relu3_1"], pooling="max")
    finally:
        for h in hooks:
            h.remove()
    assert list(out) == ["relu4_2", "relu1_1", "relu3_1"]
    assert out["relu1_1"].shape == (1, 4, 32, 48)
    assert out["relu3_1"].shape == (1, 8, 8, 12)
    assert out["relu4_2"].shape == (1, 16, 4, 6)
    assert ran == list(range(LAYERS.index("relu4_2") + 1))  # nothing after the deepest layer asked for
    assert (out["relu1_1"] >= 0).all()
    avg = narrow(img, "relu3_1", pooling="avg")["relu3_1"]
    assert avg.shape == out["relu3_1"].shape and not torch.allclose(avg, out["relu3_1"])
    # [-1, 1] → [0, 1] → ImageNet mean/std
    torch.testing.assert_close(narrow.normalize(torch.ones(1, 3, 1, 1)).flatten(),
                               (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    assert pools_before("relu5_1") == 4 and pools_before("relu1_1") == 0
    with pytest.raises(ConfigError, match="too small for VGG-19 layer relu5_1"):
        narrow(_image(8, 8, seed=0), "relu5_1")
    with pytest.raises(ConfigError, match="unknown VGG-19 layer 'relu6_1'"):
        narrow(img, "relu6_1")


def test_random_encoder_is_deterministic_and_frozen():
    a, b = load_vgg19("random", widths=NARROW, seed=3), load_vgg19("random", widths=NARROW, seed=3)
    c = load_vgg19("random", widths=NARROW, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    w = a.features[2].weight  # Kaiming-normal, fan-in 9·4: std sqrt(2/36)
    assert abs(float(w.std()) - (2 / 36) ** 0.5) < 0.1 and float(a.features[2].bias.abs().max()) == 0
    assert isinstance(a, VGG19Encoder) and not a.training and not any(p.requires_grad for p in a.parameters())


# ---- losses ----------------------------------------------------------------------------------------------
def test_gram_matrix_and_style_loss_follow_eq_3_and_4():
    feat = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # [1, N=2, 2, 2], M = 4
    # F Fᵀ = [[1+4+9+16, 2+4], [2+4, 1+1]] = [[30, 6], [6, 2]]; / (N M) = / 8
    torch.testing.assert_close(gram_matrix(feat), torch.tensor([[[3.75, 0.75], [0.75, 0.25]]]))
    g = torch.Generator().manual_seed(0)
    f, a = torch.randn(1, 3, 4, 5, generator=g), torch.randn(1, 3, 4, 5, generator=g)
    n, m = 3, 20
    raw_g = f.reshape(3, 20) @ f.reshape(3, 20).T  # Eq. 3, unnormalised
    raw_a = a.reshape(3, 20) @ a.reshape(3, 20).T
    eq4 = ((raw_g - raw_a) ** 2).sum() / (4 * n ** 2 * m ** 2)
    torch.testing.assert_close(style_layer_loss(gram_matrix(f), gram_matrix(a)), eq4)
    torch.testing.assert_close(content_loss(f, a), 0.5 * ((f - a) ** 2).sum() / (n * m))  # Eq. 1 / (N M)
    assert float(total_variation(torch.ones(1, 3, 5, 5))) == 0
    torch.testing.assert_close(total_variation(torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])), torch.tensor(1.0))


# ---- the optimisation ------------------------------------------------------------------------------------
def _run(narrow, **kw):
    seen = []
    out = stylize_gatys(kw.pop("content", _image(32, 32, seed=1)), kw.pop("styles", _image(40, 40, seed=2)),
                        encoder=narrow, progress=seen.append, **kw)
    return out, seen


def test_content_loss_decreases_from_noise(narrow):
    out, seen = _run(narrow, content_weight=1.0, style_weight=0.0, init="noise", steps=6)
    assert out.shape == (1, 3, 32, 32) and out.dtype == torch.float32 and float(out.abs().max()) <= 1
    assert [p.step for p in seen] == list(range(1, 7))
    assert seen[-1].content_loss < 0.5 * seen[0].content_loss
    assert all(p.style_loss == 0 for p in seen)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_style_loss_decreases(narrow, optimizer):
    _, seen = _run(narrow, content_weight=0.0, style_weight=1.0, init="content", steps=6, optimizer=optimizer)
    assert seen[-1].style_loss < 0.7 * seen[0].style_loss
    assert all(p.content_loss == 0 for p in seen)


def test_multiscale_returns_the_requested_size(narrow):
    out, seen = _run(narrow, content=_image(40, 56, seed=1), size=48, scales=2, steps=[2, 1], init="noise")
    assert out.shape == (1, 3, 34, 48)  # long side 48, aspect 40:56 kept
    assert [(p.scale, p.height, p.width) for p in seen] == [(0, 17, 24), (0, 17, 24), (1, 34, 48)]
    with pytest.raises(ConfigError, match=r"coarsest scale is 12x8 pixels \(width x height\); VGG-19 layer relu5_1 "
                                          r"needs at least 16"):
        _run(narrow, content=_image(40, 56, seed=1), size=48, scales=3, steps=1)


def test_luminance_transfer_keeps_the_content_chrominance(narrow):
    content = _image(32, 32, seed=5, lo=-0.4, hi=0.4)  # moderate colours: little clipping
    style = _image(40, 40, seed=6)
    out, _ = _run(narrow, content=content, styles=style, preserve_color="luminance", steps=4)
    yiq_out, yiq_c = rgb_to_yiq((out + 1) / 2), rgb_to_yiq((content + 1) / 2)
    unclipped = ((out > -1) & (out < 1)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert unclipped.float().mean() > 0.9
    torch.testing.assert_close(yiq_out[:, 1:][unclipped], yiq_c[:, 1:][unclipped], atol=1e-5, rtol=0)
    assert float((yiq_out[:, :1] - yiq_c[:, :1]).abs().mean()) > 1e-3  # the luminance was stylised


def test_histogram_matching_gives_the_content_colour_statistics():
    style, content = _image(24, 24, seed=7), _image(20, 30, seed=8, lo=-0.5, hi=0.3)
    matched = match_color_histogram(style, content)

    def stats(img):
        x = img.reshape(3, -1).double()
        return x.mean(1), torch.cov(x, correction=0)

    (mu_m, cov_m), (mu_c, cov_c) = stats(matched), stats(content)
    torch.testing.assert_close(mu_m, mu_c, atol=2e-3, rtol=0)
    torch.testing.assert_close(cov_m, cov_c, atol=2e-3, rtol=0)


def test_style_weights_one_and_zero_equal_one_style(narrow):
    a, b = _image(40, 40, seed=2), _image(36, 44, seed=9)
    one, _ = _run(narrow, styles=a, init="noise", steps=3, seed=4)
    two, _ = _run(narrow, styles=[a, b], style_weights=(1, 0), init="noise", steps=3, seed=4)
    assert torch.equal(one, two)
    half, _ = _run(narrow, styles=[a, a], style_weights=(0.5, 0.5), init="noise", steps=3, seed=4)
    torch.testing.assert_close(half, one, atol=1e-2, rtol=0)  # the same loss up to rounding
    mixed, _ = _run(narrow, styles=[a, b], style_weights=(0.5, 0.5), init="noise", steps=3, seed=4)
    assert float((mixed - one).abs().max()) > 0.1
    with pytest.raises(ConfigError, match="2 values for 1 style"):
        _run(narrow, styles=a, style_weights=(1, 0), steps=1)
    with pytest.raises(ConfigError, match="non-negative numbers with a positive sum"):
        _run(narrow, styles=[a, b], style_weights=(0, 0), steps=1)


# ---- the command line ------------------------------------------------------------------------------------
def _save(path, h, w, seed, mode="RGB"):
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def test_cli_writes_a_png_of_the_requested_size(tmp_path, capsys):
    content, style = _save(tmp_path / "c.png", 30, 40, 0), _save(tmp_path / "s.jpg", 36, 36, 1, mode="L")
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(["stylize", "--method", "gatys", "--content", content, "--style", style,
                                 "--encoder", "random", "--size", "32", "--steps", "2", "--out", out,
                                 "--no-progress"], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 24)  # long side 32, aspect 4:3
    assert f"wrote a 32x24 (width x height) image to {out}" in stdout
    assert "is greyscale (mode L); converted to RGB" in err and "encoder: VGG-19, random" in err


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys, monkeypatch):
    from imagegen.data.download import DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr("imagegen.weights.download_file", offline)
    content, style = _save(tmp_path / "c.png", 30, 40, 0), _save(tmp_path / "s.png", 36, 36, 1)
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "exists.png").write_bytes(b"x")
    torch.save(_vgg19_file_state(drop="features.0.bias"), tmp_path / "wrong.pth")
    base = ["stylize", "--content", content, "--style", style, "--encoder", "random", "--steps", "1", "--size", "32",
            "--no-progress", "--out", tmp_path / "o.png"]
    cases = [
        (["--content", tmp_path / "none.jpg"], "--content .*none.jpg: no such file"),
        (["--style", tmp_path / "corrupt.jpg"], "--style .*corrupt.jpg: cannot read the image"),
        (["--out", tmp_path / "exists.png"], "already exists; pass --force"),
        (["--style-weights", "0.7,0.3"], "2 values for 1 --style image"),
        (["--style-weights", "a"], "comma-separated numbers"),
        (["--size", "8"], "output is 8x6 pixels \\(width x height\\); VGG-19 layer relu5_1 needs at least 16"),
        (["--size", "0"], "--size 0: must be"),
        (["--steps", "0"], "at least 1 iteration"),
        (["--encoder", tmp_path / "wrong.pth"], "missing keys features.0.bias"),
        (["--encoder", "imagenet"],
         f"cannot download VGG-19 ImageNet weights .*put a copy of {VGG19.filename}.*SHA-256 starts with dcbb9e9d"),
        (["--method", "adain"], "--method adain needs the run directory"),
    ]
    for extra, pattern in cases:
        code, stdout, err = run_cli(base + extra, capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), (extra, err)
        assert re.search(pattern, lines[0]), (pattern, lines[0])
        assert not (tmp_path / "o.png").exists()


def test_reflect_padding_keeps_the_weight_layout_and_changes_only_the_border():
    zeros = load_vgg19("random", widths=NARROW, seed=0)
    reflect = load_vgg19("random", widths=NARROW, seed=0, padding="reflect")
    assert zeros.state_dict().keys() == reflect.state_dict().keys()
    assert "reflection padding" in reflect.source and "padding" not in zeros.source  # recorded in protocols
    for a, b in zip(zeros.state_dict().values(), reflect.state_dict().values()):
        assert torch.equal(a, b)
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fz, fr = zeros(img, "relu1_1")["relu1_1"], reflect(img, "relu1_1")["relu1_1"]
    torch.testing.assert_close(fz[..., 1:-1, 1:-1], fr[..., 1:-1, 1:-1])  # one conv: only the 1-pixel border differs
    assert not torch.equal(fz[..., 0, :], fr[..., 0, :])
    with pytest.raises(ConfigError, match="padding"):
        VGG19Encoder(NARROW, padding="circular")
    with pytest.raises(ConfigError, match="reflection padding"):  # conv4_1 would see 1x1
        reflect(torch.zeros(1, 3, 8, 8), "relu4_1")
    assert zeros(torch.zeros(1, 3, 8, 8), "relu4_1")["relu4_1"].shape[-1] == 1
