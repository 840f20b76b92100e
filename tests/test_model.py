"""vae_core/model.py: shapes for 8x8 and 28x28 inputs, the plain-autoencoder twin, config bounds."""

from __future__ import annotations

import pytest
import torch

from vae_core import VAE, ConfigError, VAEConfig
from vae_core.model import LOGVAR_RANGE

BATCH = 5


@pytest.fixture(params=[(8, 8), (28, 28)], ids=["8x8", "28x28"])
def model(request) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(image_shape=request.param, hidden_sizes=(64,), latent_dim=4))


def images(model: VAE) -> torch.Tensor:
    return torch.rand(BATCH, 1, *model.config.image_shape)


@torch.no_grad()
def test_encode_shapes(model):
    mu, logvar = model.encode(images(model))
    assert mu.shape == logvar.shape == (BATCH, 4)
    assert LOGVAR_RANGE[0] <= float(logvar.min()) and float(logvar.max()) <= LOGVAR_RANGE[1]


@torch.no_grad()
def test_decode_shape_and_range(model):
    out = model.decode(torch.randn(BATCH, 4) * 10)  # far from the prior still gives valid pixels
    assert out.shape == (BATCH, 1, *model.config.image_shape)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert model.decode_logits(torch.zeros(BATCH, 4)).shape == out.shape


@torch.no_grad()
def test_forward_shapes(model):
    recon, mu, logvar = model(images(model))
    assert recon.shape == (BATCH, 1, *model.config.image_shape)
    assert mu.shape == logvar.shape == (BATCH, 4)
    assert 0.0 <= float(recon.min()) and float(recon.max()) <= 1.0


def test_reparameterize_samples_around_mu():
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=3))
    mu = torch.full((20_000, 3), 2.0)
    logvar = torch.full((20_000, 3), 2 * torch.log(torch.tensor(0.5)).item())  # sigma 0.5
    torch.manual_seed(0)
    z = model.reparameterize(mu, logvar)
    assert z.shape == mu.shape
    assert torch.allclose(z.mean(0), mu[0], atol=0.02) and torch.allclose(z.std(0), torch.full((3,), 0.5), atol=0.02)


def test_deeper_hidden_stack():
    model = VAE(VAEConfig(image_shape=(28, 28), hidden_sizes=(64, 32), latent_dim=2))
    recon, mu, _ = model(torch.rand(3, 1, 28, 28))
    assert recon.shape == (3, 1, 28, 28) and mu.shape == (3, 2)


def test_non_square_images():
    model = VAE(VAEConfig(image_shape=(5, 7), hidden_sizes=(16,), latent_dim=2))
    assert model(torch.rand(3, 1, 5, 7))[0].shape == (3, 1, 5, 7)


def test_autoencoder_twin_is_deterministic():
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2, kind="ae"))
    x = torch.rand(4, 1, 8, 8)
    mu, logvar = model.encode(x)
    assert torch.equal(model.reparameterize(mu, logvar), mu)
    assert torch.equal(model(x)[0], model(x)[0])
    assert model.beta == 0.0 and VAE(VAEConfig(beta=4.0)).beta == 4.0


def test_default_is_the_classic_example():
    model = VAE()
    assert model.config == VAEConfig(image_shape=(28, 28), hidden_sizes=(400,), latent_dim=20)
    # 784-400-(20, 20)-400-784 with biases
    assert model.n_parameters() == 785 * 400 + 2 * 401 * 20 + 21 * 400 + 401 * 784


def test_config_round_trips_through_a_dict():
    cfg = VAEConfig(image_shape=(5, 7), hidden_sizes=(32, 16), latent_dim=3, beta=2.5, kind="ae")
    assert VAEConfig(**cfg.to_dict()) == cfg
    assert cfg.to_dict()["image_shape"] == [5, 7]  # JSON-friendly lists


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latent_dim": 0},
        {"latent_dim": -1},
        {"latent_dim": 513},
        {"latent_dim": 2.0},
        {"latent_dim": True},
        {"hidden_sizes": ()},
        {"hidden_sizes": (0,)},
        {"hidden_sizes": (100_000,)},
        {"hidden_sizes": (16,) * 5},
        {"image_shape": (1, 28)},
        {"image_shape": (28, 28, 1)},
        {"image_shape": (129, 28)},
        {"beta": -1.0},
        {"beta": float("nan")},
        {"kind": "gan"},
    ],
    ids=repr,
)
def test_config_out_of_range(kwargs):
    with pytest.raises(ConfigError):
        VAEConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"image_shape": (8.7, 8)}, {"hidden_sizes": (16.5,)}], ids=repr)
def test_config_refuses_fractional_sizes_instead_of_truncating(kwargs):
    """latent_dim=2.0 is refused; a fractional image side or width must be too, not silently cut down."""
    with pytest.raises(ConfigError):
        VAEConfig(**kwargs)
