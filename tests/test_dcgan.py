import pytest
import torch

from imagegen.errors import ConfigError
from imagegen.models.base import StepContext, count_parameters
from imagegen.models.dcgan import DCGAN, DCGANConfig


@pytest.mark.parametrize("res,chans", [(32, [256, 128, 64]), (64, [512, 256, 128, 64])])
def test_reference_widths_and_parameter_counts(res, chans):
    m = DCGAN(DCGANConfig(resolution=res, channels=3))
    convs = [l for l in m.G.net if isinstance(l, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs[:-1]] == chans
    if res == 64:  # pytorch/examples dcgan: netG 3,576,704, netD 2,765,568 parameters
        assert count_parameters(m.G) == 3_576_704
        assert count_parameters(m.D) == 2_765_568
    z = torch.randn(5, 100)
    img = m.G(z)
    assert img.shape == (5, 3, res, res) and img.min() >= -1 and img.max() <= 1
    assert m.D(img).shape == (5,)


def test_no_pooling_and_norms_per_paper():
    m = DCGAN(DCGANConfig(channels=1))
    assert not any(isinstance(l, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for l in m.modules())
    assert isinstance(m.D.net[1], torch.nn.LeakyReLU)  # no batch norm on D's input layer
    assert isinstance(m.G.net[-1], torch.nn.Tanh)
    wgan = DCGAN(DCGANConfig(channels=1, loss="wgan-gp"))
    assert not any(isinstance(l, torch.nn.BatchNorm2d) for l in wgan.D.modules())


def test_init_pytorch_default_and_the_papers_on_request():
    """--init pytorch (default) keeps PyTorch's layer init (uniform, bound 1/sqrt(fan_in) for a = √5;
    unit batch-norm scales); --init dcgan draws N(0, 0.02) weights and N(1, 0.02) scales (§4)."""
    torch.manual_seed(0)
    default = DCGAN(DCGANConfig(channels=1))
    w = default.D.net[2].weight.detach()  # 64 → 128, 4×4: fan_in 1,024
    bound = 1 / (64 * 16) ** 0.5
    assert float(w.abs().max()) <= bound and float(w.std()) == pytest.approx(bound / 3 ** 0.5, rel=0.05)
    assert all(torch.equal(bn.weight, torch.ones_like(bn.weight))
               for bn in default.modules() if isinstance(bn, torch.nn.BatchNorm2d))
    paper = DCGAN(DCGANConfig(channels=1, init="dcgan"))
    for net in (paper.G, paper.D):
        convs = [l for l in net.modules() if isinstance(l, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        assert all(float(c.weight.detach().std()) == pytest.approx(0.02, rel=0.1) for c in convs if c.weight.numel() > 4000)
        bns = [l for l in net.modules() if isinstance(l, torch.nn.BatchNorm2d)]
        assert bns and all(0.9 < float(bn.weight.detach().mean()) < 1.1 and float(bn.weight.detach().std()) > 0
                           for bn in bns)


def test_spectral_norm_discriminator(tmp_path):
    """--d-norm spectral: no batch norm in D, every convolution normalised to spectral norm ≈ 1 once
    the power iterations converge (Miyato et al. 2018), and the parametrised weights survive a
    checkpoint round trip."""
    from imagegen.sampling import load_run
    from imagegen import checkpoint as ckpt

    torch.manual_seed(0)
    m = DCGAN(DCGANConfig(resolution=16, channels=1, g_width=8, d_width=8, z_dim=8, d_norm="spectral"))
    assert not any(isinstance(l, torch.nn.BatchNorm2d) for l in m.D.modules())
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        for _ in range(200):  # each training-mode forward runs one power iteration
            m.D(x)
    m.eval()
    convs = [l for l in m.D.modules() if hasattr(l, "parametrizations")]
    assert len(convs) == 3  # 16 → 8 → 4, then the 4×4 output convolution
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.02), conv
    ckpt.save_checkpoint(tmp_path, "step-0000001", m, ckpt.checkpoint_meta("dcgan", m.config), {"step": 1})
    loaded = load_run(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded.D(x), m.D(x))


@pytest.mark.parametrize("kwargs,msg", [({"resolution": 48}, "power of two"), ({"channels": 2}, "1 or 3"),
                                        ({"loss": "wgan-gp", "d_norm": "batch"}, "wgan-gp"),
                                        ({"ema_decay": 1.0}, "ema_decay")])
def test_bad_configs(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        DCGANConfig(**kwargs)


@pytest.mark.parametrize("loss", ["nonsaturating", "hinge", "lsgan", "wgan-gp"])
def test_training_step_every_loss(loss):
    torch.manual_seed(0)
    m = DCGAN(DCGANConfig(resolution=16, channels=1, g_width=8, d_width=8, z_dim=8, loss=loss, n_critic=2))
    phases = m.phases()
    assert [p.name for p in phases] == ["D", "D", "G"]
    img = torch.rand(4, 1, 16, 16) * 2 - 1
    for p in ("D", "G"):
        out = m.training_step(p, {"img": img, "label": torch.full((4,), -1)})
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
        out["loss"].backward()
    if loss == "wgan-gp":
        assert "gp" in m.training_step("D", {"img": img, "label": None})


def test_samples_come_from_the_ema_generator_by_default_and_from_g_with_decay_0():
    small = dict(resolution=16, channels=1, g_width=8, d_width=8, z_dim=8)
    m = DCGAN(DCGANConfig(**small))  # 0.999 won over 3 MNIST seeds (docs/dcgan_ablation.md step 4b)
    assert m.G_ema is not None and m.config.ema_decay == 0.999
    with torch.no_grad():
        for p in m.G.parameters():
            p.add_(1.0)  # G moves; G_ema (not yet updated) does not, and samples follow G_ema
    z = torch.randn(2, 8)
    assert torch.equal(m.generate(z), m.G_ema.eval()(z)) and not torch.allclose(m.generate(z), m.G.eval()(z))
    assert DCGAN(DCGANConfig(**small, ema_decay=0.0)).G_ema is None  # the paper: samples from G


def test_ema_generator_tracks_and_samples():
    m = DCGAN(DCGANConfig(resolution=16, channels=1, g_width=8, d_width=8, z_dim=8, ema_decay=0.5))
    assert m.G_ema is not None and not any(p.requires_grad for p in m.G_ema.parameters())
    with torch.no_grad():
        for p in m.G.parameters():
            p.add_(1.0)
    m.after_step(StepContext(100, 100, 400))  # past the warm-up: decay = 0.5
    for pe, p in zip(m.G_ema.parameters(), m.G.parameters()):
        assert torch.allclose(pe, p - 0.5, atol=1e-6)
    with torch.no_grad():
        for p in m.G.parameters():
            p.add_(1.0)
    m.after_step(StepContext(1, 100, 4))  # warm-up: decay = min(0.5, 2/11)
    for pe, p in zip(m.G_ema.parameters(), m.G.parameters()):
        assert torch.allclose(pe, p - 1.5 * 2 / 11, atol=1e-6)
    g = torch.Generator().manual_seed(0)
    a = m.sample(3, generator=g)
    b = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (3, 1, 16, 16)


def test_ema_generator_keeps_its_own_batchnorm_statistics():
    """G's running statistics do not fit G_ema's averaged weights: G_ema must measure its own."""
    from torch.nn.modules.batchnorm import _BatchNorm

    torch.manual_seed(0)
    m = DCGAN(DCGANConfig(resolution=16, channels=1, g_width=8, d_width=8, z_dim=8, ema_decay=0.9))
    for mod in m.G.modules():
        if isinstance(mod, _BatchNorm):
            mod.running_mean.fill_(5.0)  # statistics that belong to G alone
    for step in range(1, 60):
        m.after_step(StepContext(step, 60, 64 * step))
    ema_bns = [mod for mod in m.G_ema.modules() if isinstance(mod, _BatchNorm)]
    assert ema_bns and all(not torch.allclose(b.running_mean, torch.full_like(b.running_mean, 5.0))
                            for b in ema_bns)
    # the tracked statistics are those of G_ema's own activations: eval ≈ train-mode batch statistics
    first = ema_bns[0]
    feats = []
    hook = first.register_forward_hook(lambda mod, inp, out: feats.append(inp[0]))
    with torch.no_grad():
        m.G_ema(m.sample_latents(4096))
    hook.remove()
    batch_mean = feats[0].mean(dim=(0, 2, 3))
    assert torch.allclose(first.running_mean, batch_mean, atol=0.05 + 0.05 * batch_mean.abs().max().item())
