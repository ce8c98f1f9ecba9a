"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so this is importable)."""

from __future__ import annotations

import time

import numpy as np


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
