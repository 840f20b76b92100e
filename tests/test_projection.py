"""vae_core/projection.py: raw, PCA, t-SNE and UMAP on tiny inputs; seeds, transforms, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from vae_core import ConfigError
from vae_core.projection import PROJECTIONS, fit_projection, knn_place, project

N, Z = 120, 5


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    """Three well separated clusters in 5-D, so every method has structure to find."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(3, Z))
    return (centres[np.arange(N) % 3] + rng.normal(size=(N, Z))).astype(np.float32)


TSNE_PARAMS = {"seed": 1, "n_iter": 250}  # fewer iterations than the app's: shape and seeding are the point


@pytest.fixture(scope="module")
def tsne_twice(latents):
    """t-SNE is the slowest method after UMAP's first call: fitted twice per module, shared by tests."""
    return fit_projection(latents, "tsne", **TSNE_PARAMS), fit_projection(latents, "tsne", **TSNE_PARAMS)


@pytest.mark.parametrize("method", ["raw", "pca"])
def test_projection_shape_and_repeatability(latents, method):
    a = project(latents, method, seed=1) if method == "pca" else project(latents, method)
    b = project(latents, method, seed=1) if method == "pca" else project(latents, method)
    assert a.shape == (N, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_tsne_shape_and_repeatability(tsne_twice):
    a, b = tsne_twice
    assert a.embedding.shape == (N, 2) and a.embedding.dtype == np.float32 and np.isfinite(a.embedding).all()
    np.testing.assert_array_equal(a.embedding, b.embedding)
    assert a.params["seed"] == 1 and a.params["n_iter"] == 250


def test_tsne_separates_clusters(latents, tsne_twice):
    emb = tsne_twice[0].embedding
    labels = np.arange(N) % 3
    centres = np.stack([emb[labels == c].mean(0) for c in range(3)])
    within = np.mean([np.linalg.norm(emb[labels == c] - centres[c], axis=1).mean() for c in range(3)])
    between = min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3))
    assert between > 2 * within


@pytest.mark.slow
def test_umap_shape_repeatability_and_transform(latents):
    """UMAP pays numba's compile (~20 s) on its first call: this is the only UMAP test."""
    first = fit_projection(latents, "umap", seed=3, n_neighbors=10)
    second = fit_projection(latents, "umap", seed=3, n_neighbors=10)
    assert first.embedding.shape == (N, 2) and np.isfinite(first.embedding).all()
    np.testing.assert_array_equal(first.embedding, second.embedding)
    assert first.placement == "exact" and first.params["n_neighbors"] == 10
    placed = first.transform(latents[:5] + 0.01)
    assert placed.shape == (5, 2) and np.isfinite(placed).all()


def test_raw_takes_the_chosen_axes(latents):
    proj = fit_projection(latents, "raw", dims=(3, 1))
    np.testing.assert_array_equal(proj.embedding, latents[:, [3, 1]])
    assert proj.params == {"dims": [3, 1]}


@pytest.mark.parametrize("method", ["raw", "pca"])
def test_transform_is_exact_for_raw_and_pca(latents, method):
    proj = fit_projection(latents, method)
    assert proj.placement == "exact"
    np.testing.assert_array_equal(proj.transform(latents), proj.embedding)
    one = proj.transform(latents[7])  # a single code is one row
    np.testing.assert_array_equal(one, proj.embedding[7:8])


def test_pca_reports_explained_variance(latents):
    proj = fit_projection(latents, "pca")
    ratio = proj.params["explained_variance_ratio"]
    assert len(ratio) == 2 and ratio[0] >= ratio[1] > 0 and sum(ratio) <= 1.0
    assert abs(float(np.corrcoef(proj.embedding.T)[0, 1])) < 1e-4  # principal axes are uncorrelated


def test_tsne_places_new_points_by_nearest_neighbours(latents, tsne_twice):
    proj = tsne_twice[0]
    assert proj.placement == "nearest neighbours"
    np.testing.assert_allclose(proj.transform(latents[:10]), proj.embedding[:10], atol=1e-3)


def test_tsne_on_fewer_points_than_its_perplexity_needs(latents):
    emb = project(latents[:10], "tsne", perplexity=30.0, n_iter=100)
    assert emb.shape == (10, 2) and np.isfinite(emb).all()


def test_knn_place_of_a_fitted_point_is_that_point():
    fitted = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=np.float32)
    emb = np.array([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]], dtype=np.float32)
    np.testing.assert_allclose(knn_place(fitted, emb, fitted[1:2], k=2), emb[1:2], atol=1e-4)


# --- bad arguments ----------------------------------------------------------------------------------


def test_unknown_method_names_the_valid_ones(latents):
    with pytest.raises(ConfigError) as err:
        project(latents, "isomap")
    assert all(name in str(err.value) for name in PROJECTIONS)
    assert set(PROJECTIONS) == {"raw", "pca", "tsne", "umap"}


@pytest.mark.parametrize("dims", [(0, 5), (-1, 0), (0,), (0, 1, 2), (7, 8)], ids=repr)
def test_raw_dims_out_of_range(latents, dims):
    with pytest.raises(ConfigError, match="dims"):
        project(latents, "raw", dims=dims)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, 5)), np.zeros(5), np.full((10, 5), np.nan), np.zeros((10, 1))],
    ids=["one point", "1-D", "NaN", "one latent dimension"],
)
def test_unusable_latents(bad):
    with pytest.raises(ConfigError):
        project(bad, "pca")


def test_unknown_parameter_is_a_config_error(latents):
    with pytest.raises(ConfigError, match="perplexity"):
        project(latents, "pca", perplexity=5)


def test_pca_variance_ratio_is_scikit_learns_explained_variance_ratio() -> None:
    from vae_core.projection import pca_variance_ratio

    z = np.random.default_rng(3).normal(size=(500, 12)) * np.linspace(0.1, 4, 12)
    assert pca_variance_ratio(z) == fit_projection(z, "pca").params["explained_variance_ratio"]
    assert pca_variance_ratio(z, k=3)[0] > pca_variance_ratio(z, k=3)[2]


def test_dimension_order_ranks_by_kl_or_by_spread_for_an_autoencoder() -> None:
    """The raw view's default axes: no torch needed, ties keep their index order."""
    from vae_core.projection import dimension_order, kl_per_dimension

    rng = np.random.default_rng(0)
    mu = rng.normal(size=(500, 4)).astype(np.float32) * np.array([0.0, 2.0, 0.5, 1.0], dtype=np.float32)
    logvar = np.zeros_like(mu)
    logvar[:, 0] = -4.0  # a tiny σ with μ at 0: still some KL, but less than dimension 1's spread of μ
    kl = kl_per_dimension(mu, logvar)
    np.testing.assert_allclose(kl, 0.5 * (mu**2 + np.exp(logvar) - logvar - 1).mean(0), rtol=1e-5)
    assert list(dimension_order(mu, logvar)) == list(np.argsort(-kl, kind="stable"))
    assert list(dimension_order(mu, logvar, autoencoder=True)) == [1, 3, 2, 0]  # by the spread of μ
    assert list(dimension_order(np.zeros((3, 3)), np.zeros((3, 3)))) == [0, 1, 2]  # all collapsed: in order


def test_training_view_keeps_each_pca_axis_pointing_the_same_way_across_epochs() -> None:
    """A PCA refitted each epoch may flip an axis with nothing changed; training_view signs it back."""
    from vae_core.projection import training_view

    rng = np.random.default_rng(0)
    mu = rng.normal(size=(300, 5)).astype(np.float32) * np.array([3, 2, 1, 0.5, 0.1], dtype=np.float32)
    first, axes = training_view(mu)
    assert first.shape == (300, 2) and axes.shape == (2, 5)
    again, _ = training_view(mu, -axes)  # the previous epoch's axes pointed the other way: follow them
    np.testing.assert_allclose(again, -first, atol=1e-4)
    same, _ = training_view(mu, axes)
    np.testing.assert_allclose(same, first, atol=1e-4)
    np.testing.assert_allclose(np.abs(first[:, 0]), np.abs(mu[:, 0] - mu[:, 0].mean()), atol=0.2)  # PC 1 ≈ dim 0
    two, none = training_view(mu[:, :2])
    assert none is None and np.array_equal(two, mu[:, :2])  # Z = 2: μ itself, as the raw view
    one, _ = training_view(mu[:, :1])
    assert np.array_equal(one[:, 0], mu[:, 0]) and not one[:, 1].any()
