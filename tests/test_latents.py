"""vae_core/latents.py: encoding a data set, prior samples, decoding, interpolation, the 2-D grid."""

from __future__ import annotations

import pytest
import torch

from vae_core import (
    VAE,
    ConfigError,
    VAEConfig,
    decode,
    encode_dataset,
    interpolate,
    latent_grid,
    sample_prior,
)
from vae_core.latents import BATCH


@pytest.fixture
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=5))


# --- encode / decode --------------------------------------------------------------------------------


def test_encode_dataset_matches_the_model_in_batches(model, digits_train):
    model.train()
    mu, logvar = encode_dataset(model, digits_train)
    assert mu.shape == logvar.shape == (len(digits_train), 5)
    with torch.no_grad():
        ref_mu, ref_logvar = model.encode(digits_train.as_float())
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(logvar, ref_logvar)
    assert not mu.requires_grad and not model.training


def test_encode_dataset_over_several_chunks(model):
    x = torch.rand(BATCH + 7, 1, 8, 8)
    mu, _ = encode_dataset(model, x)
    with torch.no_grad():
        torch.testing.assert_close(mu, model.encode(x)[0])


def test_encode_nothing(model):
    mu, logvar = encode_dataset(model, torch.zeros(0, 1, 8, 8))
    assert mu.shape == logvar.shape == (0, 5)


def test_decode_shape_and_range(model):
    images = decode(model, torch.randn(11, 5) * 3)
    assert images.shape == (11, 1, 8, 8) and not images.requires_grad
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


# --- the prior --------------------------------------------------------------------------------------


def test_sample_prior_is_reproducible_from_the_seed():
    a = sample_prior(16, 4, seed=3)
    assert a.shape == (16, 4)
    assert torch.equal(a, sample_prior(16, 4, seed=3))
    assert not torch.equal(a, sample_prior(16, 4, seed=4))


def test_sample_prior_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    sample_prior(10, 2, seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("temperature", [0.0, 0.5, 2.0])
def test_temperature_scales_the_samples(temperature):
    base = sample_prior(50, 3, seed=1)
    torch.testing.assert_close(sample_prior(50, 3, seed=1, temperature=temperature), base * temperature)


def test_temperature_is_the_standard_deviation():
    z = sample_prior(40_000, 2, seed=0, temperature=0.3)
    torch.testing.assert_close(z.std(0), torch.full((2,), 0.3), atol=0.01, rtol=0)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=0.01, rtol=0)


# --- interpolation ----------------------------------------------------------------------------------

PAIRS = {
    "random": (torch.tensor([1.5, -0.3, 2.0, 0.1]), torch.tensor([-0.4, 1.2, 0.3, -2.2])),
    "different norms": (torch.tensor([0.1, 0.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0, 4.0])),
    "orthogonal": (torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0, 0.0])),
    "antiparallel": (torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.tensor([-2.0, -2.0, 0.0, 0.0])),
    "from the origin": (torch.zeros(4), torch.tensor([1.0, 2.0, 3.0, 4.0])),
}


@pytest.mark.parametrize("mode", ["linear", "slerp"])
@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("steps", [2, 3, 10])
def test_interpolation_endpoints_and_step_count(mode, pair, steps):
    z0, z1 = PAIRS[pair]
    path = interpolate(z0, z1, steps, mode)
    assert path.shape == (steps, 4)
    torch.testing.assert_close(path[0], z0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(path[-1], z1, atol=1e-5, rtol=1e-5)


def test_interpolation_accepts_row_vectors():
    z0, z1 = PAIRS["random"]
    assert torch.equal(interpolate(z0[None], z1[None], 5, "slerp"), interpolate(z0, z1, 5, "slerp"))


@pytest.mark.parametrize("pair", list(PAIRS))
def test_slerp_keeps_the_norm_between_the_endpoint_norms(pair):
    z0, z1 = PAIRS[pair]
    norms = interpolate(z0, z1, 17, "slerp").norm(dim=1)
    lo, hi = sorted((float(z0.norm()), float(z1.norm())))
    if pair not in ("antiparallel", "from the origin"):  # those fall back to the straight line
        assert bool((norms >= lo - 1e-5).all()) and bool((norms <= hi + 1e-5).all()), norms
        expected = z0.norm() + torch.linspace(0, 1, 17) * (z1.norm() - z0.norm())  # linear in the norm
        torch.testing.assert_close(norms, expected, atol=1e-5, rtol=1e-5)


def test_slerp_in_high_dimension_stays_off_the_origin():
    """The reason for slerp: between two typical 64-D codes, the straight line dips toward the origin."""
    z = sample_prior(2, 64, seed=0)
    mid_linear = interpolate(z[0], z[1], 3, "linear")[1].norm()
    mid_slerp = interpolate(z[0], z[1], 3, "slerp")[1].norm()
    assert mid_slerp > mid_linear and mid_slerp >= min(z[0].norm(), z[1].norm()) - 1e-5


def test_linear_interpolation_is_evenly_spaced():
    z0, z1 = PAIRS["random"]
    path = interpolate(z0, z1, 5, "linear")
    torch.testing.assert_close(path[2], (z0 + z1) / 2)
    gaps = (path[1:] - path[:-1]).norm(dim=1)
    torch.testing.assert_close(gaps, gaps[:1].expand(4))


@pytest.mark.parametrize(("steps", "mode"), [(1, "linear"), (0, "slerp"), (5, "cubic")])
def test_interpolation_bad_arguments(steps, mode):
    with pytest.raises(ConfigError):
        interpolate(torch.zeros(3), torch.ones(3), steps, mode)


# --- the latent grid --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_latent_grid_shape_and_symmetric_quantiles(n):
    grid = latent_grid(n)
    assert grid.shape == (n * n, 2)
    values = grid[:n, 0]  # the first row: z1 increasing along it
    assert bool((values[1:] > values[:-1]).all())
    torch.testing.assert_close(values, -values.flip(0), atol=1e-6, rtol=0)  # symmetric about 0
    torch.testing.assert_close(grid[::n, 1], values.flip(0))  # z2 decreasing down the rows
    assert bool(torch.isfinite(grid).all())
    rows = grid.reshape(n, n, 2)
    assert bool((rows[:, :, 1] == rows[:, :1, 1]).all())  # one z2 per row
    assert bool((rows[:, :, 0] == rows[:1, :, 0]).all())  # one z1 per column


def test_latent_grid_sits_at_normal_quantiles():
    grid = latent_grid(4)
    expected = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.125, 0.375, 0.625, 0.875]))
    torch.testing.assert_close(grid[:4, 0], expected)
    assert torch.equal(latent_grid(1), torch.zeros(1, 2))


def test_latent_grid_needs_at_least_one():
    with pytest.raises(ConfigError):
        latent_grid(0)
