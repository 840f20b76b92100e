"""vae_core/losses.py: the closed-form KL against torch.distributions, and the named loss terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal
from torch.distributions import kl_divergence as torch_kl

from vae_core import kl_divergence, vae_loss
from vae_core.model import LOGVAR_RANGE


def random_posterior(b: int = 16, z: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, z, generator=gen, dtype=torch.float64) * 3
    lo, hi = LOGVAR_RANGE
    logvar = torch.rand(b, z, generator=gen, dtype=torch.float64) * (hi - lo) + lo  # the whole clamp range
    return mu, logvar


def reference_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch_kl(q, p)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_matches_torch_distributions(seed):
    mu, logvar = random_posterior(seed=seed)
    ours = kl_divergence(mu, logvar)
    assert ours.shape == mu.shape
    torch.testing.assert_close(ours, reference_kl(mu, logvar), rtol=1e-10, atol=1e-10)


def test_kl_in_float32_near_the_clamp_edges():
    mu = torch.tensor([[0.0, 1.0, -2.0, 0.5]])
    logvar = torch.tensor([[LOGVAR_RANGE[0], LOGVAR_RANGE[1], 0.0, -3.0]])
    torch.testing.assert_close(kl_divergence(mu, logvar), reference_kl(mu, logvar), rtol=1e-5, atol=1e-5)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 4)
    assert torch.equal(kl_divergence(zeros, zeros), zeros)
    mu, logvar = random_posterior()
    assert bool((kl_divergence(mu, logvar) > 0).all())


def test_vae_loss_terms():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(8, 1, 5, 7, generator=gen) > 0.5).double()  # binary pixels, so Bernoulli.log_prob applies
    logits = torch.randn(8, 1, 5, 7, generator=gen, dtype=torch.float64) * 4
    mu, logvar = random_posterior(b=8, z=3)
    terms = vae_loss(x, logits, mu, logvar)
    recon = -Bernoulli(logits=logits).log_prob(x).sum()
    kl = reference_kl(mu, logvar).sum()
    assert terms.reconstruction.shape == terms.kl.shape == terms.total.shape == ()
    torch.testing.assert_close(terms.reconstruction, recon)
    torch.testing.assert_close(terms.kl, kl)
    torch.testing.assert_close(terms.total, recon + kl)


def test_reconstruction_for_grey_pixels_is_binary_cross_entropy():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 8, 8, generator=gen, dtype=torch.float64)
    logits = torch.randn(4, 1, 8, 8, generator=gen, dtype=torch.float64)
    mu, logvar = random_posterior(b=4, z=2)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
    torch.testing.assert_close(vae_loss(x, logits, mu, logvar).reconstruction, expected)


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_beta_weights_the_kl_term(beta):
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    logits = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    mu, logvar = random_posterior(b=4, z=2)
    terms = vae_loss(x, logits, mu, logvar, beta=beta)
    torch.testing.assert_close(terms.total, terms.reconstruction + beta * terms.kl)
    torch.testing.assert_close(terms.kl, reference_kl(mu, logvar).sum())  # measured whatever its weight


def test_beta_zero_reports_the_real_kl_but_leaves_it_out_of_the_total():
    x = torch.rand(4, 1, 8, 8)
    logits = torch.randn(4, 1, 8, 8)
    mu = torch.randn(4, 2, requires_grad=True)
    logvar = torch.zeros(4, 2)
    terms = vae_loss(x, logits, mu, logvar, beta=0.0)
    assert float(terms.kl) > 0 and torch.equal(terms.total, terms.reconstruction)
    torch.testing.assert_close(terms.kl, reference_kl(mu.detach(), logvar).sum().float())
    assert not terms.total.requires_grad  # the KL does not reach the gradient


def test_a_plain_autoencoder_keeps_the_kl_out():
    x = torch.rand(4, 1, 8, 8)
    logits = torch.randn(4, 1, 8, 8)
    mu, logvar = torch.randn(4, 2), torch.full((4, 2), -12.0)
    terms = vae_loss(x, logits, mu, logvar, beta=1.0, include_kl=False)
    assert float(terms.kl) == 0.0 and torch.equal(terms.total, terms.reconstruction)


def test_loss_has_finite_gradients_for_every_input():
    logits = torch.randn(4, 1, 8, 8, requires_grad=True)
    mu = torch.randn(4, 2, requires_grad=True)
    logvar = torch.zeros(4, 2, requires_grad=True)
    vae_loss(torch.rand(4, 1, 8, 8), logits, mu, logvar).total.backward()
    for t in (logits, mu, logvar):
        assert t.grad is not None and bool(torch.isfinite(t.grad).all())
