"""How wide a kernel should blind deblurring use? BIKAnet deblurs with the amortized estimate's covariance scaled by
α; an over-wide kernel costs far more than a narrow one, so α a little under 1 can pay. Measured on *training*
images (bsds500_train, the first ``--limit`` images of the protocol's random and quick tracks, seed 7), never on the
benchmark sets, to choose the estimator's ``deblur_covariance_scale``. ``--set`` measures on another folder of the data
instead, e.g. wikiphotos10, which neither the estimator nor BIKAnet was trained on (bsds500_train is now also the
estimator's fine-tuning data).

Usage: ``python benchmarks/kernel_scale.py [--set wikiphotos10 --out benchmarks/results/kernel_scale_wikiphotos10]``;
writes ``benchmarks/results/kernel_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.deblurring import load_model
from bikanet_hf.estimation import load_estimator
from bikanet_hf.image_io import to_tensor
from bikanet_hf.metrics import kernel_l1, psnr
from bikanet_hf.protocol import protocol_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import model_deblur  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0])
    parser.add_argument("--set", default="bsds500_train", help="image folder of the data (default: bsds500_train)")
    parser.add_argument("--limit", type=int, default=24, help="images per track (default: 24)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/kernel_scale")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    estimator, model = load_estimator(), load_model()
    gains: dict[float, list] = {s: [] for s in args.scales}
    errors: dict[float, list] = {s: [] for s in args.scales}
    for track in ("random", "quick"):
        for pair in protocol_pairs(corpus.default_data_dir() / args.set, track, seed=7, limit=args.limit):
            image = to_tensor(pair.blurred)
            for scale in args.scales:
                kernel = estimator.estimate(image, scale).kernel[0].double().numpy()
                out = model_deblur(model, pair.blurred, kernel, estimated=True)
                gains[scale].append(psnr(pair.sharp, out) - psnr(pair.sharp, pair.blurred))
                errors[scale].append(kernel_l1(kernel, pair.kernel))
    rows = {
        str(s): {
            "delta_psnr": float(np.mean(gains[s])),
            "kernel_l1": float(np.mean(errors[s])),
            "pairs": len(gains[s]),
        }
        for s in args.scales
    }
    best = max(rows, key=lambda s: rows[s]["delta_psnr"])
    lines = [
        f"Blind BIKAnet on {args.set} ({rows[best]['pairs']} pairs: random and quick tracks, seed 7) with the "
        "amortized covariance scaled by α. Best α: " + best + ".\n",
        "| α | ΔPSNR over blurred (dB) | kernel L1 |",
        "|---|---|---|",
        *(f"| {s} | {r['delta_psnr']:+.3f} | {r['kernel_l1']:.3f} |" for s, r in rows.items()),
    ]
    write_results(args.out, {"set": args.set, "rows": rows, "best": float(best), **machine(args.threads)}, lines)


if __name__ == "__main__":
    main()
