"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so this is importable)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def machine(threads: int) -> dict:
    """What the numbers were measured on, recorded with them."""
    return {"threads": threads, "torch": torch.__version__, "machine": platform.processor() or platform.machine()}


def write_results(prefix: str | Path, report: dict, markdown_lines: list[str]) -> Path:
    """``PREFIX.json`` (the report) and ``PREFIX.md`` (the lines) under ``benchmarks/results`` or wherever given."""
    out = Path(prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text("\n".join(markdown_lines) + "\n")
    print("\n".join(markdown_lines))
    return out
