"""Kernel accuracy and speed of the kernel estimators, following shared/PROTOCOL.md.

Kernel error ``Σ|k̂ − k|`` (both 17×17, normalised) on bsds500_val's quick and random tracks for each method, in one
run: the amortized estimator, the KernelGAN-style internal GAN (``gan``) and its refinement of the amortized
estimate (``refine``) on the first ``--gan_limit`` images (they train a GAN per image), Polyblur's Gaussian blur
estimate (Delbracio et al. 2021; the ``polyblur`` package, if installed), and a fixed "average kernel" guess (the mean
of the random family's kernels, the best constant answer for it). Also the CPU time per 512×512 image.

Usage: ``python benchmarks/kernel_estimation.py [--estimator FOLDER] [--gan_limit 16]``
Writes ``benchmarks/results/kernel_estimation.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from timing import machine, median_seconds, write_results

from bikanet_hf import corpus
from bikanet_hf.estimation import METHODS, estimate_kernel, load_estimator
from bikanet_hf.kernels import sample_kernels
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.protocol import protocol_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import polyblur_kernel  # noqa: E402


def available_methods(gan_limit: int) -> dict:
    """Method name → (estimate function of an 8-bit RGB image, how many images of each track it runs on or None)."""
    methods = {"amortized": (lambda image, estimator: estimate_kernel(image, estimator=estimator), None)}
    for name in ("gan", "refine"):
        if name in METHODS and gan_limit > 0:
            methods[name] = (
                lambda image, estimator, m=name: estimate_kernel(image, m, estimator=estimator),
                gan_limit,
            )
    try:
        import polyblur  # noqa: F401

        methods["polyblur"] = (lambda image, estimator: polyblur_kernel(image), None)
    except ImportError:
        print("polyblur is not installed (pip install --no-build-isolation polyblur): its column is left out")
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimator", default=None, help="amortized estimator folder (default: the bundled one)")
    parser.add_argument("--limit", type=int, default=None, help="first N images of bsds500_val (default: all)")
    parser.add_argument("--gan_limit", type=int, default=16, help="images per track for gan/refine (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random track (default: 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--out", default="benchmarks/results/kernel_estimation", help="output path prefix")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    estimator = load_estimator(args.estimator)
    average = sample_kernels(2000, np.random.default_rng(12345)).kernels.mean(axis=0)
    methods = available_methods(args.gan_limit)
    folder = corpus.default_data_dir() / "bsds500_val"
    rows: dict = {}
    for track in ("quick", "random"):
        pairs = list(protocol_pairs(folder, track, seed=args.seed, limit=args.limit))
        rows[track] = {"average_kernel": {"kernel_l1": float(np.mean([kernel_l1(average, p.kernel) for p in pairs]))}}
        rows[track]["average_kernel"]["num_pairs"] = len(pairs)
        amortized_errors: list[float] = []  # per pair, the yardstick of the methods that run on a subset
        for name, (estimate, limit) in methods.items():
            errors = amortized_errors if name == "amortized" else []
            seconds = []
            for pair in pairs[:limit]:
                start = time.perf_counter()
                kernel = estimate(pair.blurred, estimator)
                seconds.append(time.perf_counter() - start)
                errors.append(kernel_l1(kernel, pair.kernel))
            rows[track][name] = {
                "kernel_l1": float(np.mean(errors)),
                # the average guess on the same images, so a subset's score has its own yardstick
                "average_kernel_same_pairs": float(np.mean([kernel_l1(average, p.kernel) for p in pairs[:limit]])),
                "amortized_same_pairs": float(np.mean(amortized_errors[:limit])),
                "median_seconds": float(np.median(seconds)),
                "num_pairs": len(errors),
            }
            print(track, name, rows[track][name], flush=True)
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    seconds_512 = median_seconds(lambda: estimate_kernel(image, estimator=estimator), repeats=7)
    report = {
        "what": "kernel error sum|k_hat - k| on bsds500_val (protocol tracks); time per image",
        "kernel_l1": rows,
        "seconds_512x512": {"amortized": seconds_512},
        "estimator": args.estimator or "bundled",
        **machine(args.threads),
    }
    names = list(methods)
    lines = [
        "Kernel error Σ|k̂ − k| on bsds500_val (lower is better; 0 = exact, 2 = disjoint), CPU "
        f"{args.threads} threads. In brackets: the fixed average kernel's and the amortized estimator's errors on the "
        "same images; then the median time per image.\n",
        "| track | " + " | ".join(names) + " | fixed average kernel |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for track, cols in rows.items():
        cells = [
            f"{cols[n]['kernel_l1']:.3f} ({cols[n]['average_kernel_same_pairs']:.3f}, "
            f"{cols[n]['amortized_same_pairs']:.3f}; {cols[n]['num_pairs']} images, {cols[n]['median_seconds']:.2f} s)"
            for n in names
        ]
        average_cell = f"{cols['average_kernel']['kernel_l1']:.3f} ({cols['average_kernel']['num_pairs']} images)"
        lines.append(f"| {track} | " + " | ".join(cells) + f" | {average_cell} |")
    lines += ["", f"Time per 512×512 image (amortized): {seconds_512 * 1000:.1f} ms (median of 7)."]
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
