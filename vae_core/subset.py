"""Which test digits a plot shows: one seeded choice, the same for every model, projection and page."""

from __future__ import annotations

import numpy as np

__all__ = ["SUBSET_SEED", "subset_indices"]

SUBSET_SEED = 0  # the same test points for every projection and page


def subset_indices(n_total: int, n: int) -> np.ndarray:
    """A fixed, seeded choice of n test indices (sorted), the same whatever the model or projection."""
    order = np.random.default_rng(SUBSET_SEED).permutation(n_total)
    return np.sort(order[: min(n, n_total)])
