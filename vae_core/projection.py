"""From Z dimensions to two: one dispatch point over raw axes, PCA, t-SNE (openTSNE) and UMAP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError

__all__ = [
    "PROJECTIONS",
    "Projection",
    "fit_projection",
    "project",
    "knn_place",
    "pca_variance_ratio",
    "kl_per_dimension",
    "dimension_order",
    "training_view",
    "tsne_place",
]

DEFAULT_SEED = 0  # every stochastic projection is seeded
# openTSNE's defaults are 250 early-exaggeration steps then 500 more. On 10,000 MNIST latent means of
# the Z = 20 model, 125 + 150 with exact neighbours gives the same clusters and trustworthiness as
# scikit-learn's TSNE (0.964 against 0.965) in 7 s against 35-40 s on two cores (README benchmark).
TSNE_EXAGGERATION_ITERATIONS = 125
TSNE_ITERATIONS = 150
# Up to this many points, exact nearest neighbours (a ball tree: 0.6 s for 10,000 points in 20
# dimensions) are faster than openTSNE's approximate default (Annoy: 4 s), and exact.
TSNE_EXACT_NEIGHBORS_MAX = 20_000
KNN_PLACE_K = 10  # neighbours used to place new points where a method has no transform


@dataclass
class Projection:
    """A fitted 2-D view: the coordinates of the points it was fitted on, and a way to place more."""

    method: str
    embedding: np.ndarray  # (N, 2) float32
    params: dict
    latents: np.ndarray = field(repr=False)  # (N, Z) the points it was fitted on
    _transform: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    @property
    def placement(self) -> str:
        """How transform() places new points: 'exact' or 'nearest neighbours'."""
        return "exact" if self._transform is not None else "nearest neighbours"

    def transform(self, new: np.ndarray) -> np.ndarray:
        """New latent codes (M, Z) -> (M, 2) in this view."""
        new = np.asarray(new, dtype=np.float32).reshape(-1, self.latents.shape[1])
        if self._transform is not None:
            return np.asarray(self._transform(new), dtype=np.float32)
        return knn_place(self.latents, self.embedding, new)


def knn_place(latents: np.ndarray, embedding: np.ndarray, new: np.ndarray, k: int = KNN_PLACE_K) -> np.ndarray:
    """Place each new code at the inverse-distance-weighted mean of its k nearest fitted points."""
    k = min(k, len(latents))
    d2 = ((new[:, None, :] - latents[None, :, :]) ** 2).sum(-1)  # (M, N)
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
    w = 1.0 / (np.sqrt(np.take_along_axis(d2, idx, axis=1)) + 1e-6)
    return ((embedding[idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)).astype(np.float32)


def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Average KL(q(z_j|x) || N(0, 1)) over the rows, per latent dimension j, in nats. (Z,).
    Closed form (Kingma & Welling 2014, Appendix B), in NumPy: the raw view ranks dimensions with it
    before anything imports torch."""
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    return (0.5 * (mu**2 + np.exp(logvar) - logvar - 1)).mean(0).astype(np.float32)


def dimension_order(mu: np.ndarray, logvar: np.ndarray, autoencoder: bool = False) -> np.ndarray:
    """Latent dimensions, most informative first: by average KL, or for an autoencoder (no KL term, a
    fixed σ) by the spread of μ. The raw view opens on the first two; Latent dimensions lists its rows
    in this order."""
    score = np.asarray(mu).std(0) if autoencoder else kl_per_dimension(mu, logvar)
    return np.argsort(-score, kind="stable")


def training_view(mu: np.ndarray, previous: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One training epoch's means in 2-D, and what to pass as `previous` for the next epoch's.

    Z = 2: μ itself. Z = 1: μ against 0. Z > 2: μ on its two principal axes, each axis signed to point
    the way the previous epoch's did: a PCA fitted anew each epoch may otherwise flip the picture from
    one epoch to the next with nothing having changed."""
    mu = np.asarray(mu, np.float32)
    if mu.shape[1] <= 2:
        coords = mu if mu.shape[1] == 2 else np.column_stack([mu[:, 0], np.zeros(len(mu), np.float32)])
        return coords, None
    centred = mu - mu.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2].copy()
    if previous is not None:
        axes *= np.where((axes * previous).sum(1) < 0, -1.0, 1.0)[:, None].astype(axes.dtype)
    return (centred @ axes.T).astype(np.float32), axes


def _raw(z: np.ndarray, dims: tuple[int, int] = (0, 1)) -> tuple[np.ndarray, Callable | None, dict]:
    dims = tuple(int(d) for d in dims)
    if len(dims) != 2 or not all(0 <= d < z.shape[1] for d in dims):
        raise ConfigError(f"dims must be two latent dimensions from 0 to {z.shape[1] - 1}, not {dims}")
    return z[:, list(dims)], lambda new: new[:, list(dims)], {"dims": list(dims)}


def _pca(z: np.ndarray, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, Callable | None, dict]:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(z)
    ratio = [round(float(r), 4) for r in pca.explained_variance_ratio_]
    return pca.transform(z), pca.transform, {"seed": seed, "explained_variance_ratio": ratio}


def pca_variance_ratio(z: np.ndarray, k: int = 2) -> list[float]:
    """The share of the variance on the first k principal axes, as PCA's explained_variance_ratio_,
    from the covariance's eigenvalues (numpy only: no scikit-learn import)."""
    eigenvalues = np.linalg.eigvalsh(np.cov(np.asarray(z, dtype=np.float64), rowvar=False))[::-1]
    return [round(float(r), 4) for r in eigenvalues[:k] / eigenvalues.sum()]


def _tsne(z: np.ndarray, perplexity: float = 30.0, seed: int = DEFAULT_SEED, n_iter: int = TSNE_ITERATIONS):
    from openTSNE import TSNE  # FFT gradients for large N (auto): several times faster than scikit-learn

    perplexity = float(min(perplexity, max(1.0, (len(z) - 1) / 3)))  # openTSNE needs 3 * perplexity < N
    tsne = TSNE(
        perplexity=perplexity,
        n_iter=n_iter,
        early_exaggeration_iter=min(TSNE_EXAGGERATION_ITERATIONS, n_iter),
        n_interpolation_points=3,  # openTSNE's default; named because the speed above depends on it
        n_jobs=2,
        random_state=seed,
        negative_gradient_method="auto",
        neighbors="exact" if len(z) <= TSNE_EXACT_NEIGHBORS_MAX else "auto",
        verbose=False,
    )
    emb = np.asarray(tsne.fit(z))
    early = min(TSNE_EXAGGERATION_ITERATIONS, n_iter)
    return emb, None, {"perplexity": perplexity, "seed": seed, "early_exaggeration_iter": early, "n_iter": n_iter}


def tsne_place(
    latents: np.ndarray, layout: np.ndarray, new: np.ndarray, perplexity: float = 30.0, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """New points into an existing t-SNE layout of `latents`, which stays where it is: openTSNE's
    transform optimises only the new points against the fixed layout (Poličar et al. 2019). Fitting
    t-SNE again on the data and the new points together moved the clusters and could split them."""
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PerplexityBasedNN

    perplexity = float(min(perplexity, max(1.0, (len(latents) - 1) / 3)))
    method = "exact" if len(latents) <= TSNE_EXACT_NEIGHBORS_MAX else "auto"
    affinities = PerplexityBasedNN(
        np.asarray(latents, np.float64), perplexity=perplexity, method=method, n_jobs=2, random_state=seed
    )
    embedding = TSNEEmbedding(np.asarray(layout, np.float64), affinities, random_state=seed, n_jobs=2)
    return np.asarray(embedding.transform(np.asarray(new, np.float64)), np.float32)


def _umap(
    z: np.ndarray,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = DEFAULT_SEED,
    init: np.ndarray | None = None,
):
    """init: a layout to start from, (N, 2), e.g. one shipped without a transform, so that the fit (which
    has one) keeps its clusters where they were; UMAP rescales it to 0-10 on each axis first."""
    import umap  # numba compiles on first use: imported only when asked for

    n_neighbors = int(min(n_neighbors, len(z) - 1))
    start = "spectral" if init is None else np.asarray(init, np.float32)
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=float(min_dist), random_state=seed, n_jobs=1, init=start)
    emb = reducer.fit_transform(z)
    return emb, reducer.transform, {"n_neighbors": n_neighbors, "min_dist": float(min_dist), "seed": seed}


PROJECTIONS: dict[str, Callable] = {"raw": _raw, "pca": _pca, "tsne": _tsne, "umap": _umap}
MIN_POINTS = {"raw": 1, "pca": 2, "tsne": 4, "umap": 4}


def fit_projection(latents, method: str, **params) -> Projection:
    """Fit `method` (one of PROJECTIONS) on latents (N, Z); see each method for its params."""
    if method not in PROJECTIONS:
        raise ConfigError(f"unknown projection {method!r}; choose one of {', '.join(PROJECTIONS)}")
    z = np.ascontiguousarray(np.asarray(latents, dtype=np.float32))
    if z.ndim != 2 or len(z) < MIN_POINTS[method] or not np.isfinite(z).all():
        raise ConfigError(f"{method} needs at least {MIN_POINTS[method]} finite points (N, Z); got {z.shape}")
    if method in ("pca", "tsne", "umap") and z.shape[1] < 2:
        raise ConfigError(f"{method} needs at least 2 latent dimensions; this model has {z.shape[1]}")
    try:
        emb, transform, used = PROJECTIONS[method](z, **params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for {method}: {exc}") from exc
    return Projection(method, np.asarray(emb, dtype=np.float32), used, z, transform)


def project(latents, method: str, **params) -> np.ndarray:
    """Latents (N, Z) -> (N, 2) with `method` in PROJECTIONS; seeded, so repeatable where the method allows."""
    return fit_projection(latents, method, **params).embedding
