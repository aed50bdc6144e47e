import math

import pytest
import torch

from imagegen import losses
from imagegen.errors import ConfigError


def test_nonsaturating_matches_bce():
    real, fake = torch.randn(32), torch.randn(32)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    d = bce(real, torch.ones(32)) + bce(fake, torch.zeros(32))
    assert torch.allclose(losses.d_nonsaturating(real, fake), d, atol=1e-6)
    assert torch.allclose(losses.g_nonsaturating(fake), bce(fake, torch.ones(32)), atol=1e-6)


def test_hinge_and_lsgan_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # relu(1-2)=0, relu(1-.5)=.5 -> .25 ; relu(1-2)=0, relu(1+.5)=1.5 -> .75
    assert losses.d_hinge(real, fake).item() == pytest.approx(1.0)
    assert losses.g_hinge(fake).item() == pytest.approx(0.75)
    assert losses.d_lsgan(torch.ones(4), torch.zeros(4)).item() == pytest.approx(0.0)
    assert losses.g_lsgan(torch.zeros(4)).item() == pytest.approx(0.5)


def test_optimal_discriminator_nonsaturating():
    # a confident, correct D has near-zero loss; a fooled one has a large loss
    assert losses.d_nonsaturating(torch.full((8,), 20.0), torch.full((8,), -20.0)).item() < 1e-6
    assert losses.d_nonsaturating(torch.zeros(8), torch.zeros(8)).item() == pytest.approx(2 * math.log(2))


def test_gradient_penalty_of_linear_critic():
    # D(x) = <w, x> has gradient w everywhere: penalty = (|w| - 1)^2
    w = torch.randn(1, 3, 4, 4)

    def D(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = losses.gradient_penalty(D, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


def test_r1_penalty_of_quadratic():
    x = torch.randn(4, 1, 2, 2, requires_grad=True)
    logits = 0.5 * x.square().flatten(1).sum(1)  # gradient = x
    assert losses.r1_penalty(logits, x).item() == pytest.approx(x.detach().square().flatten(1).sum(1).mean().item(), rel=1e-5)


def test_unknown_loss():
    with pytest.raises(ConfigError, match="unknown GAN loss"):
        losses.get_gan_loss("nope")
