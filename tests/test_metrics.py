"""Metric maths: FID, KID, IS, precision/recall, density/coverage on synthetic features."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from imagegen.errors import ImagegenError
from imagegen.metrics.evaluate import check_sample_counts, parse_metrics
from imagegen.metrics.fid import feature_statistics, fid_from_features, frechet_distance
from imagegen.metrics.inception_score import inception_score
from imagegen.metrics.kid import kernel_inception_distance, mmd2_unbiased
from imagegen.metrics.prdc import density_coverage, knn_radii, precision_recall


def gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def random_cov(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---- FID -------------------------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero():
    f = gaussian(500, 32, 0).numpy()
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-8)
    few = gaussian(20, 64, 1).numpy()  # rank-deficient covariance: still ~0
    assert fid_from_features(few, few) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    # FID(N(m1, diag a), N(m2, diag b)) = |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    rng = np.random.default_rng(0)
    m1, m2 = rng.standard_normal(16), rng.standard_normal(16)
    a, b = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(1)
    s1, s2 = random_cov(40, rng), random_cov(40, rng)
    m1, m2 = rng.standard_normal(40), rng.standard_normal(40)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_sampled_gaussians_matches_the_closed_form():
    # samples from two Gaussians with known parameters: the estimate converges to the closed form
    d, n = 8, 50_000
    rng = np.random.default_rng(2)
    s1, s2 = random_cov(d, rng), random_cov(d, rng)
    m1, m2 = np.zeros(d), np.full(d, 0.5)
    x = rng.multivariate_normal(m1, s1, size=n)
    y = rng.multivariate_normal(m2, s2, size=n)
    truth = frechet_distance(m1, s1, m2, s2)
    assert truth > 1.0
    assert fid_from_features(x, y) == pytest.approx(truth, rel=0.03)


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
    f = gaussian(100, 5, 3).numpy().astype(np.float32)
    mu, sigma = feature_statistics(f)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-10)
    with pytest.raises(ImagegenError, match="at least 2"):
        feature_statistics(f[:1])


def test_fid_grows_with_mean_shift():
    real = gaussian(2000, 16, 4).numpy()
    values = [fid_from_features(real, gaussian(2000, 16, 5, shift).numpy()) for shift in (0.0, 0.5, 1.0)]
    assert values[0] < values[1] < values[2]
    assert values[2] == pytest.approx(16 * 1.0, rel=0.1)  # |shift * 1|^2 = 16, covariances equal


# ---- KID -------------------------------------------------------------------------------------
def test_kid_is_unbiased_on_identical_distributions():
    # mean of the unbiased estimator over independent draws is ~0 (the biased V-statistic is > 0)
    vals = [mmd2_unbiased(gaussian(200, 16, 2 * i), gaussian(200, 16, 2 * i + 1)) for i in range(60)]
    mean, sem = np.mean(vals), np.std(vals) / np.sqrt(len(vals))
    assert abs(mean) < 3 * sem
    kid, std, m = kernel_inception_distance(gaussian(3000, 16, 100), gaussian(3000, 16, 101), subset_size=1000,
                                            num_subsets=20, seed=0)
    assert m == 1000 and abs(kid) < 3 * std


def test_kid_detects_a_shift_and_is_seeded():
    real, fake = gaussian(1500, 16, 7), gaussian(1500, 16, 8, 0.3)
    a = kernel_inception_distance(real, fake, subset_size=500, num_subsets=10, seed=1)
    b = kernel_inception_distance(real, fake, subset_size=500, num_subsets=10, seed=1)
    assert a == b
    assert a[0] > 5 * a[1] > 0


def test_kid_matches_torchmetrics_estimator():
    from torchmetrics.image.kid import poly_mmd

    x, y = gaussian(300, 24, 9).double(), gaussian(300, 24, 10, 0.2).double()
    assert mmd2_unbiased(x, y) == pytest.approx(float(poly_mmd(x, y)), rel=1e-5)


def test_kid_subset_size_is_reduced_to_the_smaller_set():
    _, _, m = kernel_inception_distance(gaussian(50, 4, 0), gaussian(80, 4, 1), subset_size=1000, num_subsets=3)
    assert m == 50
    with pytest.raises(ImagegenError, match="at least 2"):
        kernel_inception_distance(gaussian(1, 4, 0), gaussian(80, 4, 1))


# ---- IS --------------------------------------------------------------------------------------
def test_inception_score_extremes_and_hand_computed_value():
    k, n = 10, 1000
    confident = torch.full((n, k), -30.0)
    confident[torch.arange(n), torch.arange(n) % k] = 30.0  # one-hot, all classes equally often
    mean, std = inception_score(confident, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std < 1e-6
    assert inception_score(torch.zeros(n, k))[0] == pytest.approx(1.0)  # uniform p(y|x)
    # two classes, p(y|x) = (0.9, 0.1) or (0.1, 0.9) half of the time: IS = exp(KL((.9,.1) || (.5,.5)))
    # Tolerances follow the input's dtype: float64 logits carry ~1e-16 relative error, float32 ones
    # (log(0.9) rounded to 24 bits) ~6e-8, which the KL and exp amplify by a small factor.
    kl = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    p64 = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64).repeat(50, 1)
    assert inception_score(p64.log(), splits=1)[0] == pytest.approx(np.exp(kl), rel=1e-12)
    eps32 = float(torch.finfo(torch.float32).eps)
    assert inception_score(p64.float().log(), splits=1)[0] == pytest.approx(np.exp(kl), rel=16 * eps32)
    with pytest.raises(ImagegenError, match="at least 20"):
        inception_score(torch.zeros(15, 3), splits=10)


# ---- precision / recall / density / coverage ----------------------------------------------------
def test_prdc_on_identical_distributions():
    real, fake = gaussian(3000, 8, 11), gaussian(3000, 8, 12)
    p, r = precision_recall(real, fake, k=3)
    d, c = density_coverage(real, fake, k=5)
    assert p > 0.85 and r > 0.85
    assert d == pytest.approx(1.0, abs=0.1)
    assert c == pytest.approx(1 - 0.5 ** 5, abs=0.02)  # Naeem et al. 2020, Sec. 4: E[coverage] -> 1 - 1/2^k
    assert precision_recall(real, real, k=3) == (1.0, 1.0)


def test_prdc_drop_for_shifted_gaussians():
    # Kynkäänniemi et al. 2019 / Naeem et al. 2020 toy experiment: moving the fake Gaussian away lowers all four
    real = gaussian(2000, 8, 13)
    results = [(*precision_recall(real, gaussian(2000, 8, 14, s)), *density_coverage(real, gaussian(2000, 8, 14, s)))
               for s in (0.0, 0.5, 1.0, 2.0)]
    for before, after in zip(results, results[1:]):
        assert all(b > a for b, a in zip(before, after)), results
    assert max(results[-1]) < 0.1


def test_precision_stays_recall_drops_when_modes_are_dropped():
    real = gaussian(3000, 4, 15)
    many = gaussian(12000, 4, 16)
    half = many[many[:, 0] > 0][:3000]  # generator covers only half of the real distribution
    p, r = precision_recall(real, half, k=3)
    d, c = density_coverage(real, half, k=5)
    assert p > 0.85 and r < 0.75
    assert c < 0.7 and d > 0.8


def test_prdc_do_not_depend_on_the_chunk_size():
    real, fake = gaussian(700, 8, 17), gaussian(600, 8, 18, 0.3)
    r = (real.double() - real.double().mean(0)).float()
    torch.testing.assert_close(knn_radii(r, 3, chunk=37), knn_radii(r, 3))
    import imagegen.metrics.prdc as prdc

    base = precision_recall(real, fake), density_coverage(real, fake)
    old = prdc._CHUNK
    try:
        prdc._CHUNK = 53
        assert (precision_recall(real, fake), density_coverage(real, fake)) == base
    finally:
        prdc._CHUNK = old


def test_prdc_bad_input():
    with pytest.raises(ImagegenError, match="more than 3"):
        precision_recall(gaussian(3, 4, 0), gaussian(100, 4, 1), k=3)
    with pytest.raises(ImagegenError, match="equal D"):
        density_coverage(gaussian(100, 4, 0), gaussian(100, 5, 1))


# ---- registry / sample counts ------------------------------------------------------------------
def test_parse_metrics_and_unknown_names():
    assert parse_metrics("fid, KID,is,fid") == ["fid", "kid", "is"]
    with pytest.raises(ImagegenError, match="unknown metric.*'fdi'.*available: acc, cas, dc, fid, is, kid, modes, nll, nn, ppl, pr"):
        parse_metrics("fid,fdi")
    with pytest.raises(ImagegenError, match="no metrics"):
        parse_metrics(",")


def test_sample_count_checks():
    check_sample_counts(["fid", "kid", "pr", "dc", "is"], 1000, 1000, 128)
    with pytest.raises(ImagegenError, match="FID from 100 samples with 128-d features"):
        check_sample_counts(["fid"], 1000, 100, 128)
    assert check_sample_counts(["fid"], 1000, 100, 128, allow_few_samples=True)
    with pytest.raises(ImagegenError, match="metric fid needs at least 2"):
        check_sample_counts(["fid"], 1000, 1, 128, allow_few_samples=True)
    with pytest.raises(ImagegenError, match="metric is needs at least 20"):
        check_sample_counts(["is"], 1000, 10, 128)
    with pytest.raises(ImagegenError, match="metric pr needs at least 4"):
        check_sample_counts(["pr"], 3, 1000, 128)
