"""StyleGAN2's building blocks and training terms (issue 9): equalised learning rate, modulated
convolution (both paths, demodulation), resampling, truncation, style mixing, R1 and path-length
regularisation. The shared model suite (tests/test_models.py) covers shapes, determinism, save/load
and exact resume (with ADA adjusting p every step)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import TINY_SG2, run_cli
from imagegen.config import from_dict
from imagegen.errors import ConfigError
from imagegen.models.stylegan import StyleGANConfig
from imagegen.models.stylegan2 import DBlock, StyleGAN2, StyleGAN2Config
from imagegen.nn.styled import (EqualConv2d, EqualLinear, MappingNetwork, blur, conv2d_resample,
                                minibatch_stddev, modulated_conv2d)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw) -> StyleGAN2:
    torch.manual_seed(0)
    cfg = dict(resolution=16, channels=1, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16,
               mbstd_group=2)
    return StyleGAN2(StyleGAN2Config(**{**cfg, **kw}))


def test_equalised_lr_keeps_unit_variance_and_scales_storage():
    torch.manual_seed(0)
    x = torch.randn(4096, 256)
    for lr_mul in (1.0, 0.01):
        layer = EqualLinear(256, 256, lr_mul=lr_mul)
        # stored weights ~ N(0, 1/lr_mul²); effective weights ~ N(0, 1/fan_in) whatever lr_mul
        assert layer.weight.std().item() == pytest.approx(1 / lr_mul, rel=0.02)
        assert layer(x).std().item() == pytest.approx(1.0, rel=0.05)
    conv = EqualConv2d(64, 64, 3, bias=False)
    assert conv(torch.randn(8, 64, 16, 16)).std().item() == pytest.approx(1.0, rel=0.1)


def test_demodulation_keeps_unit_output_variance():
    torch.manual_seed(0)
    x = torch.randn(16, 64, 16, 16)
    weight = torch.randn(64, 64, 3, 3)  # any scale: demodulation removes it
    styles = torch.rand(16, 64) * 3 + 0.1  # arbitrary per-sample, per-channel scales
    out = modulated_conv2d(x, weight, styles, demodulate=True)
    per_sample = out.std(dim=(1, 2, 3))
    assert torch.allclose(per_sample, torch.ones(16), rtol=0.1), per_sample
    raw = modulated_conv2d(x, weight, styles, demodulate=False)
    assert raw.std().item() > 3  # without demodulation the scale of weights and styles shows


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_grouped_and_scaled_paths_agree(up, demodulate, k):
    torch.manual_seed(1)
    x, w, s = torch.randn(3, 8, 8, 8), torch.randn(5, 8, k, k) / math.sqrt(8 * k * k), torch.randn(3, 8)
    a = modulated_conv2d(x, w, s, demodulate=demodulate, up=up, mode="scaled")
    b = modulated_conv2d(x, w, s, demodulate=demodulate, up=up, mode="grouped")
    assert a.shape == (3, 5, 16 if up else 8, 16 if up else 8)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown modulated-conv mode"):
        modulated_conv2d(x, w, s, mode="fused")


def test_resampling_shapes_and_constant_preserved():
    x = torch.ones(2, 3, 8, 8)
    assert blur(x, (2, 2)).shape == (2, 3, 9, 9)
    w = torch.zeros(3, 3, 3, 3)
    w[range(3), range(3), 1, 1] = 1.0  # identity 3x3 kernel
    down = conv2d_resample(x, w, down=True)
    up = conv2d_resample(x, w, up=True)
    assert down.shape == (2, 3, 4, 4) and up.shape == (2, 3, 16, 16)
    # the filter is normalised: a constant image stays constant away from the zero-padded border
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(2, 3, 2, 2))
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(2, 3, 12, 12))


def test_minibatch_stddev_appends_group_std():
    x = torch.randn(4, 6, 2, 2)
    y = minibatch_stddev(x, group_size=2)
    assert y.shape == (4, 7, 2, 2)
    # samples 0 and 2 form one group (reshape [G, M, ...] puts sample i in group position i // M)
    expected = ((x[[0, 2]] - x[[0, 2]].mean(0)).square().mean(0) + 1e-8).sqrt().mean()
    assert y[0, 6, 0, 0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(y[:, :6], x)


def test_truncation_psi_zero_gives_w_avg_and_cutoff_limits_it():
    model = tiny()
    G = model.G
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        z = torch.randn(3, 16)
        ws = G.map(z, truncation_psi=0.0)
        assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))
        ws_cut = G.map(z, truncation_psi=0.0, truncation_cutoff=2)
        full = G.map(z)
        assert torch.allclose(ws_cut[:, :2], G.mapping.w_avg.expand(3, 2, -1))
        assert torch.equal(ws_cut[:, 2:], full[:, 2:])


def test_w_avg_tracks_the_mean_w_in_training():
    m = MappingNetwork(8, 8, num_layers=2, w_avg_beta=0.5)
    z = torch.randn(64, 8)
    w = m(z, update_w_avg=True)
    assert torch.allclose(m.w_avg, 0.5 * w.mean(0).detach())


def test_style_mixing_switches_ws_at_the_crossover():
    model = tiny(style_mixing=1.0)
    torch.manual_seed(3)
    ws = model._mixed_ws(4, None, torch.device("cpu"))
    same_as_first = (ws - ws[:, :1]).abs().amax(dim=(0, 2)) == 0  # [num_ws]
    cut = int((~same_as_first).nonzero()[0])
    assert 1 <= cut < ws.shape[1]
    assert same_as_first[:cut].all() and not same_as_first[cut:].any()
    assert torch.equal(ws[:, cut:], ws[:, cut:cut + 1].expand_as(ws[:, cut:]))  # one w after the crossover
    # in the synthesis network, the layers before the crossover see the first w only
    assert tiny(style_mixing=0.0)._mixed_ws(4, None, torch.device("cpu")).unique(dim=1).shape[1] == 1


def test_r1_and_path_length_backpropagate_through_double_backward():
    model = tiny(r1_interval=1, pl_interval=1)
    batch = {"img": torch.rand(4, 1, 16, 16) * 2 - 1, "label": torch.full((4,), -1)}
    out = model.training_step("Dreg", batch)
    out["loss"].backward()
    grads = [p.grad for p in model.D.parameters() if p.grad is not None]
    assert out["r1"] > 0 and grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.G.parameters())
    out = model.training_step("Greg", batch)
    out["loss"].backward()
    g = model.G.synthesis.blocks[-1].conv1.weight.grad
    assert g is not None and g.abs().sum() > 0
    assert model.G.mapping.layers[0].weight.grad.abs().sum() > 0  # through ws into the mapping network
    assert out["pl_mean"].item() == pytest.approx(0.01 * out["pl_length"].item(), rel=1e-5)  # first update


def test_lazy_regularisation_corrects_adam():
    model = tiny()
    opts = model.configure_optimizers()
    g, d = opts["G"].param_groups[0], opts["D"].param_groups[0]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and g["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    assert d["lr"] == pytest.approx(0.0025 * 16 / 17) and d["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert [(p.name, p.every) for p in model.phases()] == [("D", 1), ("Dreg", 16), ("G", 1), ("Greg", 4)]
    model = tiny(pl_weight=0.0, r1_gamma=0.0)
    assert [p.name for p in model.phases()] == ["D", "G"]
    assert model.configure_optimizers()["G"].param_groups[0]["lr"] == pytest.approx(0.0025)


def test_sampling_noise_modes_are_reproducible():
    model = tiny()
    with torch.no_grad():
        for layer in model.G_ema.modules():
            if hasattr(layer, "strength"):
                layer.strength.fill_(0.5)
    a = model.sample(3, torch.Generator().manual_seed(0))
    b = model.sample(3, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (3, 1, 16, 16) and a.abs().max() <= 1
    z = torch.randn(3, 16)
    c1 = model.generate(z, noise_mode="const")
    assert torch.equal(c1, model.generate(z, noise_mode="const"))
    assert not torch.equal(c1, model.generate(z, noise_mode="none"))


def test_default_r1_gamma_and_widths():
    cfg = StyleGAN2Config(resolution=32)
    assert cfg.r1_gamma == pytest.approx(0.0002 * 32 ** 2 / 64) and cfg.num_ws == 8
    assert [cfg.width(r) for r in (4, 8, 16, 32)] == [128, 128, 128, 64]
    assert StyleGAN2Config(resolution=64).num_ws == 10


def test_orig_discriminator_has_no_skips_and_trains():
    """d_architecture="orig" (the official cifar configuration): the same blocks without the 1×1 skip,
    so D's output is conv1(conv0(x)) alone; D still scores a batch and its loss backpropagates."""
    res, orig = tiny().D, tiny(d_architecture="orig").D
    assert all(b.skip is not None for b in res.blocks) and all(b.skip is None for b in orig.blocks)
    skips = sum(p.numel() for b in res.blocks for p in b.skip.parameters())
    assert sum(p.numel() for p in res.parameters()) - sum(p.numel() for p in orig.parameters()) == skips
    block = DBlock(4, 8, residual=False)
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), block.conv1(block.conv0(x)))
    img = torch.randn(4, 1, 16, 16, requires_grad=True)
    orig(img).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="d_architecture"):
        from_dict(StyleGAN2Config, {"d_architecture": "skip"})
    with pytest.raises(ConfigError, match="d_architecture"):  # the Python API too, not a silent orig D
        StyleGAN2Config(d_architecture="skip")
    with pytest.raises(ConfigError, match="d-architecture"):  # progressive stylegan has ProGAN's D
        StyleGANConfig(progressive=True, d_architecture="orig")


def test_conditional_discriminator_is_a_projection_on_the_label_embedding():
    """StyleGAN2-ADA's conditional D: logit = <features(x), cmap(c)> / sqrt(C); G's w depends on c too."""
    model = tiny(num_classes=3)
    D, G = model.D, model.G
    x = torch.randn(4, 1, 16, 16)
    c = torch.tensor([0, 1, 2, 0])
    out = D(x, c)
    assert out.shape == (4,)
    feats = D.out(D.fc(D.conv(minibatch_stddev(D.blocks(D.from_rgb(x)), D.mbstd_group)).flatten(1)))
    cm = D.cmap(torch.empty(4, 0), c)
    torch.testing.assert_close(out, (feats * cm).sum(1) / math.sqrt(cm.shape[1]))
    # the same image scored under another label gets another logit; the label's embedding decides it
    assert not torch.allclose(D(x, torch.tensor([1, 2, 0, 1])), out)
    with pytest.raises(ValueError, match="needs labels"):
        D(x)
    z = torch.randn(2, 16)
    assert not torch.allclose(G.map(z, torch.tensor([0, 0])), G.map(z, torch.tensor([1, 1])))


def test_cli_conditional_on_unlabelled_data_is_one_line_error(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    code, out, err = run_cli(["train", "stylegan2", "--data", folder, "--conditional", "--resolution", "8",
                              "--steps", "1", "--no-progress", "--out", tmp_path / "run"], capsys)
    assert code == 2 and "has no labels but the model is class-conditional" in err
    assert len(err.strip().splitlines()) == 1, err




def test_cli_preset_cifar_sets_the_official_switches_and_given_options_win(tmp_path, capsys):
    """--preset cifar: stylegan2-ada-pytorch's cifar switches (no PL, no mixing, orig D, map 2, mbstd 32,
    gamma 0.01); an option given on the command line overrides the preset; a resumed run refuses it."""
    import json

    run = tmp_path / "sg2"
    code, out, err = run_cli(["train", "stylegan2", *TINY_SG2, "--steps", "1", "--preset", "cifar",
                              "--out", run], capsys)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())["model_config"]
    assert (cfg["pl_weight"], cfg["style_mixing"], cfg["d_architecture"], cfg["r1_gamma"]) == (0.0, 0.0, "orig", 0.01)
    assert cfg["mbstd_group"] == 2 and cfg["mapping_layers"] == 2  # TINY_SG2 gives both: they win
    assert "preset cifar: " in out and "given here instead: mapping_layers, mbstd_group" in out
    code, _, err = run_cli(["train", "stylegan2", "--resume", run, "--steps", "2", "--preset", "cifar"], capsys)
    assert code == 2 and "--preset cannot change when resuming" in err
    code, _, err = run_cli(["train", "stylegan2", *TINY_SG2, "--preset", "ffhq", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "Invalid value for '--preset'" in err
    code, _, err = run_cli(["train", "stylegan", *TINY_SG2, "--preset", "cifar", "--out", tmp_path / "y"], capsys)
    assert code == 2 and "No such option '--preset'" in err

def test_cli_train_resume_and_sample_with_truncation(tmp_path, capsys):
    from conftest import TINY_DCGAN

    run = tmp_path / "sg2"
    code, _, err = run_cli(["train", "stylegan2", *TINY_SG2, "--steps", "3", "--augment", "ada", "--out", run], capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "stylegan2", "--resume", run, "--steps", "5", "--no-progress"], capsys)
    assert code == 0, err
    for extra in ([], ["--truncation-psi", "0.5", "--truncation-cutoff", "2", "--noise-mode", "const"],
                  ["--truncation-psi", "1.5", "--allow-extrapolation"]):
        out = tmp_path / f"s{len(extra)}.png"
        code, _, err = run_cli(["sample", run, "--num", "4", "--out", out, *extra], capsys)
        assert code == 0 and out.is_file(), err
    for bad, message in ((["--truncation-psi", "1.5"], "use a value in [0, 1]"),
                         (["--truncation-psi", "-0.1"], "use a value in [0, 1]"),
                         (["--truncation-cutoff", "9"], "the model has 4 style layers; use 1..4")):
        code, _, err = run_cli(["sample", run, "--num", "2", "--out", tmp_path / "bad.png", *bad], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    dc = tmp_path / "dc"
    assert run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--out", dc], capsys)[0] == 0
    code, _, err = run_cli(["sample", dc, "--num", "2", "--out", tmp_path / "d.png", "--truncation-psi", "0.7"], capsys)
    assert code == 2 and "apply to style-based models" in err


def test_stylegan_adain_normalises_then_applies_the_style():
    from imagegen.models.stylegan import StyleGAN, StyleGANConfig, adain

    x = torch.randn(2, 3, 5, 5) * 4 + 2
    style = torch.tensor([[1.0, 2.0, 3.0, 0.0, -1.0, 5.0]] * 2)
    y = adain(x, style)
    torch.testing.assert_close(y.mean(dim=(2, 3)), style[:, 3:], atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), style[:, :3], atol=1e-4, rtol=1e-4)
    torch.manual_seed(0)
    model = StyleGAN(StyleGANConfig(resolution=16, channels=1, z_dim=8, w_dim=8, mapping_layers=2,
                                    channel_base=64, channel_max=8))
    assert model.config.pl_weight == 0 and [p.name for p in model.phases()] == ["D", "Dreg", "G"]
    assert len(model.G.synthesis.layers) == model.num_ws == 6
    assert model.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 16, 16)


def test_stylegan_progressive_grows_with_fade_in():
    import torch.nn.functional as F

    from imagegen.models.base import StepContext
    from imagegen.models.stylegan import StyleGAN, StyleGANConfig

    torch.manual_seed(0)
    model = StyleGAN(StyleGANConfig(resolution=16, channels=1, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                                    channel_max=8, mbstd_group=2, progressive=True, fade_kimg=1, stable_kimg=1))
    assert model.growth == (4, 1.0)
    model.before_step(StepContext(step=0, total_steps=9, images_seen=1500))  # 8×8 half faded in
    assert model.growth == (8, 0.5) and model.D.alpha == 0.5
    syn = model.G.synthesis
    ws = model.G.map(torch.randn(2, 8))
    with torch.no_grad():
        syn.growth.copy_(torch.tensor([8.0, 0.0]))
        at0 = syn(ws, "const")
        syn.growth.copy_(torch.tensor([4.0, 1.0]))
        prev = syn(ws, "const")
    torch.testing.assert_close(at0, F.interpolate(prev, scale_factor=2, mode="nearest"))
    model.before_step(StepContext(step=0, total_steps=9, images_seen=1500))
    batch = {"img": torch.rand(4, 1, 16, 16) * 2 - 1, "label": torch.full((4,), -1)}
    for phase in ("D", "Dreg", "G"):
        model.training_step(phase, batch)["loss"].backward()
    assert model.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 16, 16)  # upsampled to R
    with pytest.raises(Exception, match="drop --conditional or --progressive"):
        StyleGANConfig(resolution=16, progressive=True, conditional=True)


def test_stylegan_progressive_resumes_exactly_mid_fade(tmp_path, capsys):
    from safetensors.torch import load_file

    args = ["train", "stylegan", *TINY_SG2, "--progressive", "--fade-kimg", "0.032", "--stable-kimg", "0.008"]
    assert run_cli([*args, "--steps", "4", "--out", tmp_path / "full"], capsys)[0] == 0
    assert run_cli([*args, "--steps", "2", "--out", tmp_path / "part"], capsys)[0] == 0
    code, _, err = run_cli(["train", "stylegan", "--resume", tmp_path / "part", "--steps", "4", "--no-progress"], capsys)
    assert code == 0, err
    a = load_file(str(tmp_path / "full" / "checkpoints" / "step-0000004" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoints" / "step-0000004" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["G_ema.synthesis.growth"].tolist() == [8.0, 0.5]  # 24 images before step 4: 8×8, α = 0.5


def test_evaluate_samples_with_truncation_and_records_it(tmp_path, monkeypatch, capsys):
    """``imagegen evaluate --truncation-psi/--truncation-cutoff/--noise-mode`` (the truncation sweep):
    the options reach the sampler and are part of the recorded protocol; elsewhere they are one-line errors."""
    import json

    import imagegen.sampling as sampling
    from _metrics_fixtures import install_tiny_classifier

    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMAGEGEN_INCEPTION_WEIGHTS", raising=False)
    install_tiny_classifier(tmp_path / "cache")
    run = tmp_path / "sg2"
    assert run_cli(["train", "stylegan2", *TINY_SG2, "--steps", "1", "--out", run], capsys)[0] == 0
    seen, generate = [], sampling.generate

    def spy(model, num, **kw):
        seen.append(kw)
        return generate(model, num, **kw)

    monkeypatch.setattr(sampling, "generate", spy)
    code, out, err = run_cli(["evaluate", run, "--metrics", "pr", "--num-samples", "40", "--truncation-psi", "0.5",
                              "--truncation-cutoff", "2", "--noise-mode", "const", "--json"], capsys)
    assert code == 0, err
    assert seen[-1]["truncation_psi"] == 0.5 and seen[-1]["truncation_cutoff"] == 2 and seen[-1]["noise_mode"] == "const"
    fake = json.loads(out)["protocol"]["fake"]
    assert fake["truncation_psi"] == 0.5 and fake["truncation_cutoff"] == 2 and fake["noise_mode"] == "const"
    code, out, err = run_cli(["evaluate", run, "--metrics", "pr", "--num-samples", "40", "--json"], capsys)
    assert code == 0 and seen[-1]["truncation_psi"] == 1.0 and seen[-1]["noise_mode"] == "random", err
    for bad, message in ((["--truncation-psi", "1.5"], "use a value in [0, 1]"),
                         (["--truncation-cutoff", "9"], "the model has 4 style layers")):
        code, _, err = run_cli(["evaluate", run, "--metrics", "pr", *bad], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    npz = tmp_path / "f.npz"
    np.savez(npz, images=np.zeros((4, 16, 16, 1), dtype=np.uint8))
    code, _, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--truncation-psi", "0.7"], capsys)
    assert code == 2 and "not to --fake images" in err


@pytest.mark.parametrize("name", ["stylegan2", "stylegan", "progan"])
def test_128_pixels_builds_trains_one_step_and_samples(name):
    """The issue's largest required resolution, 128×128 (num_ws = 2·log2(128) − 2 = 12), with widths
    small enough for a unit test: every training phase runs and backpropagates, samples are 128×128."""
    from imagegen.models.progan import ProGAN, ProGANConfig
    from imagegen.models.stylegan import StyleGAN

    torch.manual_seed(0)
    kw = dict(resolution=128, channels=3, z_dim=8, channel_base=128, channel_max=4, mbstd_group=2)
    if name == "progan":
        model = ProGAN(ProGANConfig(**kw, start_resolution=128))
    else:
        cls, cfg_cls = (StyleGAN2, StyleGAN2Config) if name == "stylegan2" else (StyleGAN, StyleGANConfig)
        model = cls(cfg_cls(**kw, w_dim=8, mapping_layers=2))
        assert model.num_ws == 12
    batch = {"img": torch.rand(2, 3, 128, 128) * 2 - 1, "label": torch.full((2,), -1)}
    for phase in [p.name for p in model.phases()]:
        loss = model.training_step(phase, batch)["loss"]
        assert torch.isfinite(loss), phase
        loss.backward()
    img = model.sample(2, torch.Generator().manual_seed(0))
    assert img.shape == (2, 3, 128, 128) and img.dtype == torch.float32 and img.abs().max() <= 1
