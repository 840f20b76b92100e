"""vae_core.analysis: posterior samples, per-dimension KL, traversals, nearest rows, ellipses."""

from __future__ import annotations

import numpy as np
import torch

from vae_core.analysis import (
    ELLIPSE_VERTICES,
    kl_per_dimension,
    nearest_rows,
    sample_posterior,
    sigma_ellipses,
    traversal_codes,
)


def test_posterior_samples_follow_mu_and_sigma() -> None:
    mu = np.tile(np.array([[1.0, -2.0]], dtype=np.float32), (20000, 1))
    logvar = np.log(np.array([[0.25, 4.0]], dtype=np.float32)) * np.ones_like(mu)
    z = sample_posterior(mu, logvar, seed=3)
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.03)
    np.testing.assert_array_equal(z, sample_posterior(mu, logvar, seed=3))


def test_kl_per_dimension_matches_torch_and_flags_collapse() -> None:
    mu = np.array([[0.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    logvar = np.array([[0.0, np.log(0.5)], [0.0, np.log(0.5)]], dtype=np.float32)
    q = torch.distributions.Normal(torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * logvar)))
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean(0).numpy()
    kl = kl_per_dimension(mu, logvar)
    np.testing.assert_allclose(kl, expected, atol=1e-6)
    assert kl[0] == 0.0 and kl[1] > 0.5  # dimension 0 is the prior itself: collapsed


def test_traversal_varies_one_dimension_over_mean_plus_minus_two_std() -> None:
    mu = np.random.default_rng(0).normal(loc=[0, 3, 0], scale=[1, 2, 1], size=(5000, 3)).astype(np.float32)
    base = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    codes = traversal_codes(base, 1, mu, steps=5)
    assert codes.shape == (5, 3)
    np.testing.assert_array_equal(codes[:, [0, 2]], np.tile(base[[0, 2]], (5, 1)))
    lo, hi = mu[:, 1].mean() - 2 * mu[:, 1].std(), mu[:, 1].mean() + 2 * mu[:, 1].std()
    np.testing.assert_allclose(codes[[0, -1], 1], [lo, hi], rtol=1e-5)


def test_an_unused_dimension_is_swept_over_the_priors_range_when_asked() -> None:
    mu = np.zeros((100, 2), dtype=np.float32)
    mu[:, 0] = np.random.default_rng(0).normal(size=100)  # dimension 1 never varies: a collapsed one
    assert np.ptp(traversal_codes(mu[0], 1, mu, steps=5)[:, 1]) == 0  # mean ± 2 x its std of 0
    np.testing.assert_allclose(traversal_codes(mu[0], 1, mu, steps=5, min_spread=1.0)[[0, -1], 1], [-2, 2])
    wide = traversal_codes(mu[0], 0, mu, steps=5, min_spread=0.5)[[0, -1], 0]  # a wider spread is kept
    np.testing.assert_allclose(wide, mu[:, 0].mean() + np.array([-2, 2]) * mu[:, 0].std(), rtol=1e-5)


def test_nearest_rows_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(1)
    ref, queries = rng.normal(size=(700, 6)), rng.normal(size=(300, 6))
    idx, dist = nearest_rows(queries, ref, chunk=64)
    d = np.linalg.norm(queries[:, None, :] - ref[None, :, :], axis=-1)
    np.testing.assert_array_equal(idx, d.argmin(1))
    np.testing.assert_allclose(dist, d.min(1), atol=1e-3)


def test_sigma_ellipses_have_the_right_radii() -> None:
    outlines = sigma_ellipses(np.array([[1.0, 2.0]]), np.array([[0.5, 3.0]]))
    assert outlines.shape == (ELLIPSE_VERTICES, 2)
    np.testing.assert_allclose(outlines[:, 0].max() - 1.0, 0.5, atol=1e-2)
    np.testing.assert_allclose(outlines[:, 1].max() - 2.0, 3.0, atol=2e-2)
