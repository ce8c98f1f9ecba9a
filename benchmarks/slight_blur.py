"""What does blind deblurring do to a photo that is sharp, or only slightly blurred? A sharp photo should come back
as it was (the estimator answering "no blur", a near-delta kernel), and a slightly blurred one should still gain.

Each photo of ``--sets`` is taken as it is (σ = 0) and blurred by the protocol (isotropic Gaussian, 8-bit) with each
further ``--sigmas``; each version is deblurred blind with ``bikanet_hf.deblur`` (the default BIKAnet or
``--model``, each ``--estimator`` in turn, whole photo). Reported: PSNR of the result against the sharp photo (for
σ = 0: against itself, higher = less changed), its gain over the input, and the widest σ of the amortized estimate
(as ``estimate_kernel`` returns it, before the deblurring scale; ``SlightBlurWarning`` is raised under
``SLIGHT_BLUR_SIGMA``). The ``true kernel`` rows deblur each version with the kernel it was blurred with (for σ = 0
a delta, 1×1): what the model does when the estimate is right, so that the estimator's part in a change can be told
from the model's.

Usage: ``python benchmarks/slight_blur.py [--model FOLDER] [--estimator NAME=FOLDER ...]``; writes
``benchmarks/results/slight_blur.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import torch
from timing import machine, write_results

from bikanet_hf import corpus, deblur
from bikanet_hf.estimation import DEFAULT_ESTIMATOR, SLIGHT_BLUR_SIGMA, estimate_kernel, load_estimator
from bikanet_hf.image_io import list_images, load_rgb
from bikanet_hf.kernels import degrade, gaussian_kernel, kernel_spread
from bikanet_hf.metrics import psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["set5", "wikiphotos10", "bsds500_val"])
    parser.add_argument("--limit", type=int, default=10, help="photos per set at most (default: 10)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.6, 1.0], help="blur σ in px (0: as is)")
    parser.add_argument(
        "--estimator",
        action="append",
        metavar="NAME=FOLDER",
        help="an estimator to compare (repeatable; default: the bundled one, as 'bundled')",
    )
    parser.add_argument("--model", default=None, help="the BIKAnet to deblur with (default: the bundled one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/slight_blur")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    estimators = dict(e.split("=", 1) for e in args.estimator or [f"bundled={os.path.relpath(DEFAULT_ESTIMATOR)}"])
    photos = [p for s in args.sets for p in list_images(corpus.default_data_dir() / s)[: args.limit]]
    sharp = [load_rgb(p) for p in photos]
    inputs = {
        sigma: [x if sigma == 0 else degrade(x, gaussian_kernel(sigma, sigma, 0.0)) for x in sharp]
        for sigma in args.sigmas
    }
    report: dict = {"photos": [f"{p.parent.name}/{p.name}" for p in photos], "sigmas": args.sigmas, "rows": {}}
    report["model"] = args.model or "bundled"
    for name, folder in [("true kernel", None), *estimators.items()]:
        estimator = load_estimator(folder) if folder else None
        for sigma, images in inputs.items():
            scores, gains, widths = [], [], []
            true_kernel = gaussian_kernel(sigma, sigma, 0.0) if sigma else np.ones((1, 1))
            for truth, image in zip(sharp, images, strict=True):
                if estimator is None:
                    result = deblur(image, true_kernel, model=args.model)
                else:
                    result = deblur(image, model=args.model, estimator=estimator)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        widths.append(kernel_spread(estimate_kernel(image, estimator=estimator))[0])
                scores.append(psnr(truth, np.asarray(result.image)))
                gains.append(scores[-1] - psnr(truth, image) if sigma else 0.0)
            report["rows"][f"{name} σ={sigma:g}"] = {
                "estimator": name,
                "folder": str(folder) if folder else None,
                "sigma": sigma,
                "psnr": float(np.mean(scores)),
                "worst_psnr": float(np.min(scores)),
                "gain": float(np.mean(gains)),
                # None for the true-kernel rows, which estimate nothing
                "estimated_sigma_major": float(np.mean(widths)) if widths else None,
                "estimated_sigma_range": [float(np.min(widths)), float(np.max(widths))] if widths else None,
                "share_warned": float(np.mean(np.array(widths) < SLIGHT_BLUR_SIGMA)) if widths else None,
                "per_photo_psnr": [round(float(s), 2) for s in scores],
            }
            print(name, sigma, report["rows"][f"{name} σ={sigma:g}"]["psnr"], flush=True)
    lines = [
        f"Blind deblurring of {len(photos)} photos ({', '.join(args.sets)}; the first {args.limit} of each) as they "
        "are (σ = 0) and slightly blurred: PSNR of the result against the sharp photo (mean / worst), its gain over "
        f"the input, and the amortized estimate's widest σ in px (mean, range; share under {SLIGHT_BLUR_SIGMA}, "
        "which `deblur()` warns about as slight blur). The `true kernel` rows are deblurred with the kernel each "
        "version was blurred with (a delta for σ = 0).\n",
        "| estimator | blur σ | PSNR (dB) | worst | gain over input (dB) | estimated σ₁ | range | warned |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['estimator']} | {r['sigma']:g} | {r['psnr']:.2f} | {r['worst_psnr']:.2f} | "
            + (f"{r['gain']:+.2f}" if r["sigma"] else "—")
            + (
                f" | {r['estimated_sigma_major']:.2f} | {lo:.2f}–{hi:.2f} | {r['share_warned']:.0%} |"
                if r["estimated_sigma_range"]
                else " | — | — | — |"
            )
            for r in report["rows"].values()
            for lo, hi in [r["estimated_sigma_range"] or (None, None)]
        ),
    ]
    write_results(args.out, {**report, **machine(args.threads)}, lines)


if __name__ == "__main__":
    main()
