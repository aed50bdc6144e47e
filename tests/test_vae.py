"""vae / cvae / aae: likelihoods, bounds, units, the nll metric and the autoencoder pieces."""
from __future__ import annotations

import math

import pytest
import torch

from imagegen.data import ImageDataset
from imagegen.errors import ConfigError
from imagegen.metrics.nll import evaluate_nll
from imagegen.models.aae import AAE, AAEConfig
from imagegen.models.vae import (CVAE, VAE, CVAEConfig, VAEConfig, binarize, bits_per_dim,
                                 continuous_to_discrete_nll, discretized_logistic_log_prob, gaussian_kl,
                                 iwae_bound)
from imagegen.nn.autoencoder import num_down

GRID = torch.linspace(-1, 1, 256)  # the 8-bit levels in [-1, 1]


def tiny_vae(likelihood: str = "bernoulli", resolution: int = 8, channels: int = 1, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(resolution=resolution, channels=channels, z_dim=4, width=8, hidden=32,
                         likelihood=likelihood))


def images(n: int, c: int = 1, r: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, r, r), generator=g).float() / 127.5 - 1


# ---- likelihoods and units ----------------------------------------------------------------------------
@pytest.mark.parametrize("mean,log_scale", [(0.0, -3.0), (0.95, -6.0), (-1.4, 1.0), (0.3, -12.0), (-0.99, -5.0)])
def test_discretized_logistic_is_a_distribution_over_256_levels(mean, log_scale):
    lp = discretized_logistic_log_prob(GRID, torch.tensor(mean), torch.tensor(log_scale))
    assert torch.isfinite(lp).all() and (lp <= 0).all()
    assert lp.double().exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_discretized_logistic_matches_sigmoid_difference_and_has_gradients():
    x = GRID[100:103]
    mean = torch.tensor(0.1, requires_grad=True)
    log_scale = torch.tensor(-2.0, requires_grad=True)
    lp = discretized_logistic_log_prob(x, mean, log_scale)
    s = math.exp(-2.0)
    ref = torch.sigmoid((x - 0.1 + 1 / 255) / s) - torch.sigmoid((x - 0.1 - 1 / 255) / s)
    torch.testing.assert_close(lp.exp(), ref, rtol=1e-4, atol=1e-7)
    lp.sum().backward()
    assert torch.isfinite(mean.grad) and torch.isfinite(log_scale.grad)


def test_bits_per_dim_conventions():
    d = 784
    assert bits_per_dim(d * math.log(2), d) == pytest.approx(1.0)
    assert bits_per_dim(86.0, d) == pytest.approx(86.0 / (784 * math.log(2)))  # ≈ 0.158 bits/dim
    # a uniform density on [-1, 1] (p = 1/2 per dim) is 8 bits/dim as a model of 8-bit data
    nll = continuous_to_discrete_nll(d * math.log(2), d, data_range=2.0, levels=256)
    assert bits_per_dim(nll, d) == pytest.approx(8.0)
    # the same with data in [0, 1] (density 1): the familiar "+ log 256"
    assert continuous_to_discrete_nll(0.0, d, data_range=1.0) == pytest.approx(d * math.log(256))


def test_binarize_is_bernoulli_with_p_from_grey_level():
    img = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).repeat(20000, 1)
    b = binarize(img, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(b.mean(0), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]), atol=0.015, rtol=0)
    assert torch.equal(b, binarize(img, torch.Generator().manual_seed(0)))


def test_gaussian_kl_closed_form():
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0


# ---- bounds --------------------------------------------------------------------------------------------
def test_elbo_is_below_iwae_for_every_draw_and_iwae_tightens_with_k():
    model = tiny_vae()
    with torch.no_grad():  # a poor proposal q and a z-dependent decoder: clear gaps between the k
        model.encoder.fc[2].weight.mul_(4)
        model.decoder.fc[0].weight.mul_(4)
    x = model.likelihood_targets(images(32), torch.Generator().manual_seed(1))
    means, sems = {}, {}
    for k in (1, 8, 64, 512):
        vals = []
        for rep in range(4):
            lw = model.log_weights(x, k=k, generator=torch.Generator().manual_seed(100 * k + rep))
            elbo, iwae = lw.double().mean(1), iwae_bound(lw)
            assert torch.all(elbo <= iwae + 1e-9)  # Jensen, per image and per draw
            vals.append(iwae.mean())
        means[k], sems[k] = float(torch.stack(vals).mean()), float(torch.stack(vals).std() / 2)
    # E[L_k] is non-decreasing in k (Burda et al. 2016, Theorem 1): strict where the gaps are large,
    # within three standard errors where L_k has nearly converged
    assert means[1] < means[8] < means[64], means
    assert means[512] > means[64] - 3 * (sems[512] + sems[64]), (means, sems)


def test_iwae_converges_to_the_exact_log_likelihood():
    """With a decoder that ignores z, log p(x) = log p(x|·) exactly; L_k → it and ELBO = it − KL."""
    model = tiny_vae(likelihood="logistic")
    with torch.no_grad():
        model.decoder.fc[0].weight.zero_()  # decoder output no longer depends on z
        model.encoder.fc[2].weight.mul_(0.05)  # q(z|x) close to (not equal to) the prior
    x = images(6)
    exact = model.decoder_log_prob(x, model.decoder(torch.zeros(6, 4))).double()
    lw = model.log_weights(x, k=4000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(iwae_bound(lw), exact, atol=0.02, rtol=0)
    mu, logvar = model.posterior(x, None)
    kl = gaussian_kl(mu, logvar).double()
    torch.testing.assert_close(lw.double().mean(1), exact - kl, atol=0.05, rtol=0)


def test_log_weights_validate_k_and_labels():
    with pytest.raises(ConfigError):
        tiny_vae().log_weights(torch.zeros(2, 1, 8, 8), k=0)
    torch.manual_seed(0)
    cvae = CVAE(CVAEConfig(resolution=8, channels=1, num_classes=3, z_dim=4, width=8, hidden=16))
    with pytest.raises(ConfigError, match="labels"):
        cvae.log_weights(torch.zeros(2, 1, 8, 8), k=2)
    lw = cvae.log_weights(torch.zeros(2, 1, 8, 8), torch.tensor([0, 2]), k=3)
    assert lw.shape == (2, 3)


# ---- training step -------------------------------------------------------------------------------------
def test_training_step_binarises_dynamically_and_weights_the_kl_by_beta():
    model = tiny_vae()
    grey = torch.zeros(4, 1, 8, 8)  # p = 0.5 everywhere: the binarisation must differ between steps
    torch.manual_seed(0)
    x1 = model.likelihood_targets(grey)
    x2 = model.likelihood_targets(grey)
    assert set(x1.unique().tolist()) == {0.0, 1.0} and not torch.equal(x1, x2)
    assert torch.equal(tiny_vae("logistic").likelihood_targets(grey), grey)
    for beta in (0.0, 1.0, 4.0):
        model.config.beta = beta
        out = model.training_step("train", {"img": grey, "label": torch.full((4,), -1)})
        torch.testing.assert_close(out["loss"], out["recon"] + beta * out["kl"])
        torch.testing.assert_close(out["elbo"], -(out["recon"] + out["kl"]))
        torch.testing.assert_close(out["bpd"], -out["elbo"] / (64 * math.log(2)))


def test_vae_learns_on_tiny_data():
    model = tiny_vae("logistic")
    data = images(32, seed=3).clamp(-1, -0.2)  # dark images: easy to learn
    data = (torch.round((data + 1) * 127.5) / 127.5 - 1)
    opt = model.configure_optimizers()["train"]
    losses = []
    for step in range(60):
        opt.zero_grad()
        out = model.training_step("train", {"img": data, "label": torch.full((32,), -1)})
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert sum(losses[-5:]) < 0.9 * sum(losses[:5])


# ---- architecture --------------------------------------------------------------------------------------
@pytest.mark.parametrize("r,n", [(8, 1), (28, 2), (32, 3), (64, 4), (30, 1)])
def test_any_even_resolution(r, n):
    assert num_down(r) == n
    model = tiny_vae(resolution=r, channels=3)
    assert model.sample(2).shape == (2, 3, r, r)
    assert model.encode(images(2, 3, r)).shape == (2, 4)


@pytest.mark.parametrize("r", [7, 6, 9])
def test_unusable_resolution_is_a_config_error(r):
    with pytest.raises(ConfigError, match="even size"):
        VAEConfig(resolution=r)


def test_cvae_reconstructs_with_a_chosen_label():
    torch.manual_seed(0)
    cvae = CVAE(CVAEConfig(resolution=8, channels=1, num_classes=3, z_dim=4, width=8, hidden=16))
    x = images(2)
    z = cvae.encode(x, torch.tensor([0, 1]))
    a, b = cvae.decode(z, torch.tensor([0, 1])), cvae.decode(z, torch.tensor([2, 2]))
    assert a.shape == x.shape and not torch.equal(a, b)


def test_aae_phases_use_their_own_optimisers():
    torch.manual_seed(0)
    aae = AAE(AAEConfig(resolution=8, channels=1, z_dim=2, width=8, hidden=16, d_hidden=16))
    opts = aae.configure_optimizers()
    ids = {n: {id(p) for g in o.param_groups for p in g["params"]} for n, o in opts.items()}
    enc = {id(p) for p in aae.encoder.parameters()}
    assert ids["G"] == enc and enc < ids["AE"] and not (ids["D"] & ids["AE"])
    assert [p.name for p in aae.phases()] == ["recon", "D", "G"]


# ---- the nll metric ------------------------------------------------------------------------------------
def test_evaluate_nll_on_a_tiny_dataset():
    model = tiny_vae()
    u8 = (torch.rand(10, 8, 8, 1) * 255).to(torch.uint8).numpy()
    ds = ImageDataset(u8, name="tiny")
    res = evaluate_nll(model, ds, k=20, num_images=7, batch_size=3)
    assert res["num_images"] == 7 and res["k"] == 20 and res["dims"] == 64
    assert res["neg_elbo"] >= res["nll"] > 0
    assert res["nll_bpd"] == pytest.approx(res["nll"] / (64 * math.log(2)))
    assert evaluate_nll(model, ds, k=20, num_images=7, batch_size=3) == res  # seeded: reproducible
    with pytest.raises(ConfigError, match="resolution"):
        evaluate_nll(tiny_vae(resolution=16), ds, k=2)
    with pytest.raises(ConfigError, match="likelihood"):
        evaluate_nll(AAE(AAEConfig(resolution=8, channels=1)), ds, k=2)


def test_cli_evaluate_nll(tmp_path, capsys):
    import json

    from imagegen.cli import main
    from imagegen.training import TrainConfig, Trainer

    run = tmp_path / "run"
    Trainer("vae", VAEConfig(resolution=8, z_dim=4, width=8, hidden=16), TrainConfig(
        data="digits", steps=2, batch_size=8, progress=False, grid_size=4), run, echo=lambda s: None).fit()
    capsys.readouterr()
    main(["evaluate", str(run), "--metrics", "nll", "--nll-k", "5", "--num-real", "8", "--json"])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["neg_elbo"] >= record["nll"] > 0 and record["step"] == 2
    assert record["protocol"]["images"] == "8 evenly spaced of digits" and record["protocol"]["dims"] == 64
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["nll"] == record["nll"]
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--fake", "digits:test", "--real", "digits:test", "--metrics", "nll"])
    assert e.value.code == 2
