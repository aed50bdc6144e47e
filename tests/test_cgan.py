"""cgan: projection discriminator, conditional batch norm, spectral norm, AC-GAN option, CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imagegen.cli import main
from imagegen.errors import ConfigError
from imagegen.models.cgan import CGAN, CGANConfig
from imagegen.nn.conditional import ConditionalBatchNorm2d


def tiny(**kw) -> CGAN:
    torch.manual_seed(0)
    return CGAN(CGANConfig(**{"resolution": 8, "channels": 1, "num_classes": 4, "z_dim": 8,
                              "g_width": 8, "d_width": 8, **kw}))


def test_projection_discriminator_output_depends_on_label_as_eq3():
    """D(x, y) = ψ(φ(x)) + ⟨V[y], φ(x)⟩ (Miyato & Koyama 2018, Eq. 3)."""
    D = tiny().D.eval()  # eval: no power-iteration update, so the weights are fixed between calls
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    y0, y1 = torch.zeros(5, dtype=torch.long), torch.full((5,), 3)
    with torch.no_grad():
        d0, _ = D(x, y0)
        d1, _ = D(x, y1)
        phi = D.features(x)  # [5, F]
        V = D.head.embed.weight  # spectrally normalised embedding [K, F]
    assert (d0 - d1).abs().min() > 0
    torch.testing.assert_close(d1 - d0, phi @ (V[3] - V[0]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(d0, D.head.psi(phi).squeeze(1) + phi @ V[0], rtol=1e-4, atol=1e-5)


def test_discriminator_without_projection_ignores_label():
    D = tiny(d_cond="none", ac_weight=1.0).D.eval()
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        d0, cls0 = D(x, torch.zeros(3, dtype=torch.long))
        d1, _ = D(x, torch.ones(3, dtype=torch.long))
    assert torch.equal(d0, d1) and cls0.shape == (3, 4)


def test_spectral_norm_bounds_every_discriminator_layer():
    """After power iterations converge, each normalised weight has spectral norm ≈ 1 (Miyato et al. 2018)."""
    model = tiny()
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    y = torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        for _ in range(200):  # each training-mode forward runs one power iteration
            model.D(x, y)
    model.D.eval()
    layers = [m for m in model.D.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 3  # the one conv at 8×8, ψ and the embedding
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.02), m
    plain = tiny(spectral_norm=False).D
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_conditional_batch_norm_starts_as_batch_norm_and_uses_the_label():
    cbn = ConditionalBatchNorm2d(3, 5)
    x = torch.randn(6, 3, 4, 4)
    y = torch.arange(6) % 5
    ref = torch.nn.BatchNorm2d(3, affine=False)(x)
    torch.testing.assert_close(cbn(x, y), ref)
    with torch.no_grad():
        cbn.gamma.weight[2] = 2.0
        cbn.beta.weight[2] = 0.5
    out = cbn(x, y)
    torch.testing.assert_close(out[2], 2 * ref[2] + 0.5)
    torch.testing.assert_close(out[0], ref[0])


def test_generator_output_depends_on_label_for_fixed_z():
    model = tiny(ema_decay=0.0)  # samples from G, whose label embeddings are edited below
    with torch.no_grad():
        for norm in model.G.norms:
            norm.gamma.weight.normal_(1.0, 0.3)
            norm.beta.weight.normal_(0.0, 0.3)
    z = model.sample_latents(4, torch.Generator().manual_seed(0))
    a = model.generate(z, torch.zeros(4, dtype=torch.long))
    b = model.generate(z, torch.full((4,), 2))
    assert (a - b).flatten(1).abs().amax(1).min() > 1e-3
    with pytest.raises(ConfigError):
        model.generate(z)  # conditional: labels are required


def test_samples_come_from_g_ema_by_default():
    assert tiny().G_ema is not None and tiny().config.ema_decay == 0.999  # docs/dcgan_ablation.md step 5
    assert tiny(ema_decay=0.0).G_ema is None


def test_config_validation_and_defaults():
    assert CGANConfig().loss == "hinge" and CGANConfig().d_cond == "projection"
    with pytest.raises(ConfigError, match="ac-weight"):
        CGANConfig(d_cond="none")
    with pytest.raises(ConfigError, match="power of two"):
        CGANConfig(resolution=28)


def test_init_option_sets_the_generator_init():
    """--init dcgan draws G's conv weights from N(0, 0.02); --init pytorch (cgan's default) keeps
    PyTorch's uniform layer init (bound 1/sqrt(fan_in))."""
    convs = lambda m: [l for l in m.G.modules() if isinstance(l, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    paper = tiny(resolution=32, g_width=32, init="dcgan")
    assert CGANConfig().init == "pytorch"
    big = [c.weight.detach() for c in convs(paper) if c.weight.numel() > 4000]
    assert big and all(float(w.std()) == pytest.approx(0.02, rel=0.1) for w in big)
    default = tiny(resolution=32, g_width=32)
    for c in convs(default):
        w = c.weight.detach()
        fan_in = w[0].numel()  # PyTorch reads fan_in from dim 1 of the weight, also for transposed convs
        assert float(w.abs().max()) <= 1 / fan_in ** 0.5 + 1e-7


@pytest.mark.parametrize("kw", [dict(ac_weight=1.0), dict(loss="nonsaturating"), dict(d_cond="none", ac_weight=0.5)])
def test_loss_variants_train(kw):
    model = tiny(**kw)
    opt = model.configure_optimizers()
    x, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3])
    for ph in ("D", "G"):
        opt[ph].zero_grad()
        out = model.training_step(ph, {"img": x, "label": y})
        out["loss"].backward()
        opt[ph].step()
        assert torch.isfinite(out["loss"])
        if kw.get("ac_weight"):
            assert "ac_loss" in out


def test_cli_train_and_class_grid(tmp_path):
    run = tmp_path / "run"
    main(["train", "cgan", "--data", "digits", "--resolution", "8", "--g-width", "8", "--d-width", "8",
          "--z-dim", "8", "--steps", "2", "--batch-size", "8", "--out", str(run), "--no-progress",
          "--grid-size", "10"])
    out = tmp_path / "grid.png"
    main(["sample", str(run), "--class-grid", "--num", "30", "--out", str(out)])
    grid = np.asarray(Image.open(out))
    assert grid.shape == (10 * 10 + 2, 3 * 10 + 2)  # 10 rows (classes) of 3 images, 8 px + 2 px padding
    main(["sample", str(run), "--class", "7", "--num", "4", "--out", str(tmp_path / "sevens.npz")])
    assert np.load(tmp_path / "sevens.npz")["labels"].tolist() == [7] * 4
