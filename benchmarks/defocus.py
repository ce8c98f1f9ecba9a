"""Defocus: a lens out of focus blurs each point into a disk, not a Gaussian. How do BIKAnet and its estimator fare?

Outside the benchmark protocol (its kernels are Gaussians), but the commonest soft blur in real photos. The protocol's
steps otherwise: image ``i`` of ``--set`` (sorted by name) is blurred with the defocus disk of radius
``RADII[i mod 5]`` px (``bikanet_hf.kernels.defocus_kernel``, area-sampled in the 17×17 frame; the protocol's mirror
padding and 8-bit quantisation). Columns: the blurred input; skimage's Wiener filter with the true disk (balance 1e-4,
as Table 1); each ``--model`` with the true disk (non-blind), and blind three ways: ``+blind``,
``deblur(blur_type="gaussian")``: the amortized Gaussian estimate; ``+defocus``, ``deblur(blur_type="defocus")``: the
disk whose radius the photo's spectrum gives (:mod:`bikanet_hf.defocus_estimation`); ``+auto``,
``deblur(blur_type="auto")``: that disk when the spectrum shows one, else the Gaussian estimate. Every model column
runs ``deblur()`` in one pass, float32, so each is told the same noise level (a JPEG's floor included). PSNR / SSIM on
8-bit images, means per radius and over all images, gain over the input.

With ``--noise``, the protocol's noise track (σ = 2.55, image i seeded with i) is added before quantisation; with
``--jpeg Q``, each blurred photo is saved as a JPEG of quality Q and read back (as users' photos come).

Usage: ``python benchmarks/defocus.py --model bikanet=bikanet_hf/checkpoints/bikanet [--model NAME=FOLDER ...]``;
writes ``benchmarks/results/defocus.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.deblurring import deblur
from bikanet_hf.estimation import load_estimator
from bikanet_hf.image_io import jpeg_roundtrip, list_images, load_rgb
from bikanet_hf.kernels import defocus_kernel, degrade
from bikanet_hf.metrics import psnr, ssim
from bikanet_hf.modeling_bikanet import BikanetForImageDeblurring
from bikanet_hf.protocol import NOISE_SIGMA

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import format_cell, score, wiener_deblur  # noqa: E402

RADII = (1.5, 2.5, 3.5, 5.0, 7.0)
WIENER_BALANCE = 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=FOLDER", help="repeatable")
    parser.add_argument("--set", default="bsds500_val", help="image folder name in the data dir, or a path")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--noise", action="store_true", help="add the protocol's noise (σ = 2.55, seed i)")
    parser.add_argument(
        "--jpeg", type=int, default=None, metavar="Q", help="save each blurred photo as a JPEG of quality Q"
    )
    parser.add_argument("--out", default="benchmarks/results/defocus")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folders = dict(m.split("=", 1) for m in args.model)
    models = {name: BikanetForImageDeblurring.from_pretrained(f).for_inference() for name, f in folders.items()}
    # each model's own estimator, as deblur() uses it
    estimators = {name: load_estimator(Path(f) / "kernel_estimator") for name, f in folders.items()}
    folder = Path(args.set) if Path(args.set).is_dir() else corpus.default_data_dir() / args.set
    paths = list_images(folder)[: args.limit]
    blind = ("+blind", "+defocus", "+auto")
    columns = ["blurred", "wiener"] + [f"{name}{suffix}" for name in models for suffix in ("",) + blind]
    scores: dict[str, list[tuple[float, float]]] = {c: [] for c in columns}
    radii, start = [], time.time()
    for i, path in enumerate(paths):
        sharp, radius = load_rgb(path), RADII[i % len(RADII)]
        kernel = defocus_kernel(radius)
        noise = {"noise_sigma": NOISE_SIGMA, "generator": torch.Generator().manual_seed(i)} if args.noise else {}
        blurred = degrade(sharp, kernel, **noise)
        blurred = blurred if args.jpeg is None else jpeg_roundtrip(blurred, args.jpeg)
        outputs = {"blurred": blurred, "wiener": wiener_deblur(blurred, kernel, WIENER_BALANCE)}
        for name, model in models.items():
            # every column through deblur(), one pass in float32: a JPEG's noise floor is told to each alike
            common = {"model": model, "tile_size": None, "precision": "float32"}
            outputs[name] = np.asarray(deblur(blurred, kernel, **common).image)
            for suffix, blur_type in (("+blind", "gaussian"), ("+defocus", "defocus"), ("+auto", "auto")):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # slight-blur warnings for the smallest disks
                    result = deblur(blurred, estimator=estimators[name], blur_type=blur_type, **common)
                outputs[f"{name}{suffix}"] = np.asarray(result.image)
        for column, image in outputs.items():
            scores[column].append((psnr(sharp, image), ssim(sharp, image)))
        radii.append(radius)
        print(f"{i + 1}/{len(paths)} {path.name} r={radius}", flush=True)

    def summary(rows: list[int]) -> dict:
        base = [scores["blurred"][j] for j in rows]
        return {c: score([scores[c][j] for j in rows], base) for c in columns}

    groups = {f"r = {r:g} px": [j for j, x in enumerate(radii) if x == r] for r in RADII}
    groups = {label: rows for label, rows in groups.items() if rows}
    groups["all"] = list(range(len(radii)))
    results = {label: {"images": len(rows), **summary(rows)} for label, rows in groups.items()}
    report = {
        "set": folder.name,
        "noise_sigma": NOISE_SIGMA if args.noise else 0.0,
        "jpeg_quality": args.jpeg,
        "radii": RADII,
        "wiener_balance": WIENER_BALANCE,
        "models": folders,
        "results": results,
        "machine": machine(args.threads),
        "seconds": time.time() - start,
    }
    noise = (f", noise σ = {NOISE_SIGMA}" if args.noise else "") + (
        f", saved as JPEG q{args.jpeg}" if args.jpeg else ""
    )
    lines = [
        f"Defocus blur (a disk, not the protocol's Gaussians) on {folder.name}: image i blurred with a disk of radius "
        f"{', '.join(f'{r:g}' for r in RADII)} px (i mod 5){noise}, 8-bit. PSNR (dB) / SSIM (gain over the blurred "
        "input). "
        "Every method gets the true disk except, blind: NAME+blind, with the amortized Gaussian estimate; "
        "NAME+defocus, with the disk measured from the photo's spectrum; NAME+auto, with that disk when the spectrum "
        "shows one, else the Gaussian estimate. "
        f"wiener: skimage, balance {WIENER_BALANCE:g}. `benchmarks/defocus.py`.",
        "",
        "| radius | images | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for label, row in results.items():
        cells = [format_cell(c, row[c]) for c in columns]
        lines.append(f"| {label} | {row['images']} | " + " | ".join(cells) + " |")
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
