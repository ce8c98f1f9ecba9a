#!/usr/bin/env python
"""Blind kernel estimates of whole training photos, for ``train_bikanet.py --kernel_estimates``.

Each photo of ``--train_dirs`` is blurred whole (the protocol's blur) with ``--per_image`` random kernels drawn from
``numpy.random.default_rng([seed, photo, j])``, and each kernel is estimated from the whole blurred photo by the
estimator ``deblur()`` uses for that blur, as it does for a user's photo:

* ``--kernel_family motion``: camera-shake kernels (:func:`bikanet_hf.motion.camera_shake_kernel`, 31×31), estimated
  by edge prediction (:func:`bikanet_hf.shake_estimation.estimate_shake_kernel`), about 1.6 s per estimate per core;
  estimates made on training crops instead (``--estimated_kernel_probability`` alone) are much worse.
* ``--kernel_family gaussian``: the training Gaussians (half bank16, half the random family, 17×17; with
  ``--defocus_fraction``, that share of defocus disks instead; with ``--near_sharp_fraction``, that share of the
  Gaussians nearly sharp, σ 0.3–0.6, as a sharp photo looks to the estimator), estimated by the bundled amortized
  estimator (or ``--estimator``) with the covariance scale ``deblur()`` applies, as a user's soft photo is; about
  0.05 s each.

Writes one ``.npz``: ``sources`` (the photos' paths, in the order of :func:`bikanet_hf.corpus.sharp_images`),
``image_index``, ``kernel`` and ``estimate`` (N×k×k float32), ``seed``, ``kernel_family``.

    python train/precompute_kernel_estimates.py --kernel_family motion --train_dirs DIR [DIR ...] \
        --output runs/shake_estimates.npz
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import datasets
import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.estimation import estimate_kernel
from bikanet_hf.image_io import load_rgb
from bikanet_hf.kernels import degrade, sample_kernels
from bikanet_hf.motion import MOTION_KERNEL_SIZE, camera_shake_kernel
from bikanet_hf.shake_estimation import estimate_shake_kernel


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_dirs", nargs="+", required=True, help="Folders of sharp training photos.")
    parser.add_argument("--output", required=True, help="The .npz file to write.")
    parser.add_argument(
        "--kernel_family",
        choices=("gaussian", "motion"),
        default="motion",
        help='"motion" (camera shake, edge prediction; the default) or "gaussian" (the amortized estimator), as '
        "train_bikanet.py --kernel_family.",
    )
    parser.add_argument(
        "--estimator",
        default=None,
        help="Gaussian only: the amortized estimator's folder or Hub id (default: the bundled one, as deblur()).",
    )
    parser.add_argument("--per_image", type=int, default=2, help="Kernels per photo (default 2).")
    parser.add_argument(
        "--defocus_fraction",
        type=float,
        default=0.0,
        help="Gaussian only: the share of defocus disks among the kernels (radius 1–7.5 px; default 0), as "
        "train_bikanet.py --defocus_fraction.",
    )
    parser.add_argument(
        "--near_sharp_fraction",
        type=float,
        default=0.0,
        help="Gaussian only: the share of nearly sharp kernels among the Gaussians (σ 0.3–0.6; default 0), as "
        "train_bikanet.py --near_sharp_fraction.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kernels (default 0).")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N photos (default: all).")
    parser.add_argument("--workers", type=int, default=2, help="Processes (default 2, one per core).")
    args = parser.parse_args(argv)
    if args.per_image < 1:
        parser.error("--per_image must be at least 1")
    if (args.estimator or args.defocus_fraction or args.near_sharp_fraction) and args.kernel_family != "gaussian":
        parser.error("--estimator, --defocus_fraction and --near_sharp_fraction are for --kernel_family gaussian")
    for name in ("defocus_fraction", "near_sharp_fraction"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name} must be in [0, 1]")
    return args


def estimate_photo(
    job: tuple[int, str, int, int, str, str | None, float, float],
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(photo index, kernel, estimate) for each of the ``per_image`` kernels of one photo (read once)."""
    torch.set_num_threads(1)
    index, path, per_image, seed, kernel_family, estimator, defocus_fraction, near_sharp_fraction = job
    sharp = load_rgb(path)
    results = []
    for j in range(per_image):
        rng = np.random.default_rng([seed, index, j])
        if kernel_family == "motion":
            kernel = camera_shake_kernel(rng)
            estimate = estimate_shake_kernel(degrade(sharp, kernel) / 255.0, MOTION_KERNEL_SIZE)
        else:
            kernel = sample_kernels(
                1, rng, bank16_fraction=0.5, near_sharp_fraction=near_sharp_fraction, defocus_fraction=defocus_fraction
            ).kernels[0]
            blurred = degrade(sharp, kernel)
            estimate = estimate_kernel(blurred, method="amortized", estimator=estimator, for_deblurring=True)
        results.append((index, kernel, estimate))
    return results


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    images = corpus.sharp_images(args.train_dirs).cast_column("sharp", datasets.Image(decode=False))
    sources = [value["path"] for value in images["sharp"]]
    count = len(sources) if args.limit is None else min(args.limit, len(sources))
    jobs = [
        (
            i,
            sources[i],
            args.per_image,
            args.seed,
            args.kernel_family,
            args.estimator,
            args.defocus_fraction,
            args.near_sharp_fraction,
        )
        for i in range(count)
    ]
    start, results = time.time(), []
    with multiprocessing.Pool(args.workers) as pool:
        for n, photo_results in enumerate(pool.imap(estimate_photo, jobs), 1):
            results.extend(photo_results)
            if n % 10 == 0 or n == len(jobs):
                print(
                    f"{len(results)}/{len(jobs) * args.per_image} estimates, {time.time() - start:.0f} s", flush=True
                )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        output,
        sources=np.array(sources),
        image_index=np.array([r[0] for r in results], dtype=np.int64),
        kernel=np.stack([r[1] for r in results]).astype(np.float32),
        estimate=np.stack([r[2] for r in results]).astype(np.float32),
        seed=np.int64(args.seed),
        kernel_family=np.array(args.kernel_family),
    )
    return output


if __name__ == "__main__":
    print(main())
