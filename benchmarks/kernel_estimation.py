"""Kernel accuracy and speed of the kernel estimators, following shared/PROTOCOL.md.

Kernel error ``Σ|k̂ − k|`` (both 17×17, normalised) on bsds500_val's quick and random tracks for each estimator,
next to a fixed "average kernel" guess (the mean of the random family's kernels, the best constant answer for it),
and CPU time per 512×512 image.

Usage: ``python benchmarks/kernel_estimation.py --estimator bikanet_hf/checkpoints/kernel-estimator``
Writes ``benchmarks/results/kernel_estimation.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
from timing import median_seconds

from bikanet_hf import corpus
from bikanet_hf.estimation import estimate_kernel, load_estimator
from bikanet_hf.kernels import sample_kernels
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.protocol import protocol_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimator", default=None, help="estimator folder (default: the bundled one)")
    parser.add_argument("--limit", type=int, default=None, help="first N images of bsds500_val (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random track (default: 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--out", default="benchmarks/results/kernel_estimation", help="output path prefix")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    estimator = load_estimator(args.estimator)
    average = sample_kernels(2000, np.random.default_rng(12345)).kernels.mean(axis=0)
    folder = corpus.default_data_dir() / "bsds500_val"
    rows = {}
    for track in ("quick", "random"):
        amortized, constant = [], []
        for pair in protocol_pairs(folder, track, seed=args.seed, limit=args.limit):
            amortized.append(kernel_l1(estimate_kernel(pair.blurred, estimator=estimator), pair.kernel))
            constant.append(kernel_l1(average, pair.kernel))
        rows[track] = {
            "amortized": float(np.mean(amortized)),
            "average_kernel": float(np.mean(constant)),
            "num_pairs": len(amortized),
        }
        print(track, rows[track], flush=True)
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    seconds = median_seconds(lambda: estimate_kernel(image, estimator=estimator), repeats=7)
    report = {
        "what": "kernel error sum|k_hat - k| on bsds500_val (protocol tracks); time per 512x512 image",
        "kernel_l1": rows,
        "seconds_512x512": {"amortized": seconds},
        "estimator": args.estimator or "bundled",
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = [
        "Kernel error Σ|k̂ − k| on bsds500_val (lower is better; 0 = exact, 2 = disjoint), CPU "
        f"{args.threads} threads.\n",
        "| track | pairs | amortized | fixed average kernel |",
        "|---|---|---|---|",
        *(f"| {t} | {r['num_pairs']} | {r['amortized']:.3f} | {r['average_kernel']:.3f} |" for t, r in rows.items()),
        "",
        f"Time per 512×512 image (amortized): {seconds * 1000:.1f} ms (median of 7).",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
