"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so this is importable)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bikanet_hf.modeling_bikanet import native_bf16


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere the platform's processor string)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    return name or platform.machine()


def machine(threads: int) -> dict:
    """What the numbers were measured on, recorded with them: whether the CPU computes bf16 natively decides the
    precision ``deblur()`` runs BIKAnet in (``precision="auto"``)."""
    return {
        "threads": threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu": cpu_name(),
        "native_bf16": native_bf16("cpu"),
    }


def write_results(prefix: str | Path, report: dict, markdown_lines: list[str]) -> Path:
    """``PREFIX.json`` (the report) and ``PREFIX.md`` (the lines) under ``benchmarks/results`` or wherever given."""
    out = Path(prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text("\n".join(markdown_lines) + "\n")
    print("\n".join(markdown_lines))
    return out
