"""Issue 15 (memory): Theil-Sen's cached index pairs stay small whatever the chain's size."""

from __future__ import annotations

import numpy as np

from volsurf.pricing import forwards


def test_large_pair_counts_are_not_cached_and_give_the_same_line():
    rng = np.random.default_rng(15)
    x = np.sort(rng.uniform(1000, 2000, 600))
    y = 3.0 - 0.002 * x + rng.normal(0, 1e-3, x.size)
    before = forwards._pair_indices.cache_info().currsize
    slope, intercept = forwards.theil_sen(x, y)
    assert forwards._pair_indices.cache_info().currsize == before  # 600 pairs: computed, not kept
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    assert slope == float(np.median((y[j] - y[i])[dx != 0] / dx[dx != 0]))
    assert intercept == float(np.median(y - slope * x))
