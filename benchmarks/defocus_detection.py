"""Blind defocus: how often ``estimate_defocus`` calls a photo out of focus, and how close its radius is.

For each image of each ``--sets`` folder, six blurs: none (the sharp photo), the protocol's quick track (bank16
Gaussian ``i mod 16``), its random track (seed 0), its motion track (Levin et al.'s camera shake ``i mod 8``), the
defocus benchmark's disk (``benchmarks/defocus.py``: radius
``RADII[i mod 5]``), and that disk over the left three quarters of the width only (the right quarter in focus, as a
subject before a blurred background: no one disk fits it); each clean and, with ``--noise``, with the protocol's noise
(σ = 2.55, seed ``i``); with ``--jpeg Q``, every photo is then saved as a JPEG of quality Q and read back. Reports
the share called out of focus (``DefocusEstimate.is_defocus``: wanted for disks, a false alarm otherwise) and, for
disks, the radius error: median of ``|r̂ / r − 1|`` and the share within 5% (all disks, and the detected ones).

Usage: ``python benchmarks/defocus_detection.py [--sets bsds500_val set14] [--noise] [--jpeg Q]``; writes
``benchmarks/results/defocus_detection.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from defocus import RADII
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.defocus_estimation import estimate_defocus
from bikanet_hf.image_io import jpeg_roundtrip
from bikanet_hf.kernels import defocus_kernel, degrade
from bikanet_hf.protocol import NOISE_SIGMA, protocol_pairs

BLURS = ("sharp", "gaussian quick", "gaussian random", "camera shake", "disk", "disk, right quarter sharp")


def blurred_images(folder: Path, noise: bool, limit: int | None, jpeg: int | None = None):
    """:func:`_blurred_images`, each saved as a JPEG of quality ``jpeg`` and read back when given."""
    for blur, i, image, radius in _blurred_images(folder, noise, limit):
        yield blur, i, image if jpeg is None else jpeg_roundtrip(image, jpeg), radius


def _blurred_images(folder: Path, noise: bool, limit: int | None):
    """``(blur, index, image, radius)`` for every image and blur (``radius``: the disk's, else ``None``)."""
    sigma = NOISE_SIGMA if noise else 0.0
    for track in ("quick", "random", "motion"):
        for i, pair in enumerate(protocol_pairs(folder, track, noise=noise, limit=limit)):
            if track == "quick":  # the same images, unblurred and disk-blurred, with the same noise draws
                identity = np.pad([[1.0]], 8)
                generator = torch.Generator().manual_seed(i) if noise else None
                sharp = degrade(pair.sharp, identity, noise_sigma=sigma, generator=generator)
                yield "sharp", i, sharp, None
                radius = RADII[i % len(RADII)]
                generator = torch.Generator().manual_seed(i) if noise else None
                disk = degrade(pair.sharp, defocus_kernel(radius), noise_sigma=sigma, generator=generator)
                yield "disk", i, disk, radius
                partly, left = sharp.copy(), 3 * disk.shape[1] // 4
                partly[:, :left] = disk[:, :left]
                yield "disk, right quarter sharp", i, partly, None
            yield "camera shake" if track == "motion" else f"gaussian {track}", i, pair.blurred, None


def summarise(rows: list[dict]) -> dict:
    detected = [r for r in rows if r["is_defocus"]]
    summary = {"images": len(rows), "called_defocus": len(detected) / len(rows)}
    if rows[0]["radius"] is not None:
        for label, subset in (("all", rows), ("detected", detected)):
            errors = np.array([abs(r["estimate"] / r["radius"] - 1) for r in subset])
            summary[f"median_error_{label}"] = float(np.median(errors)) if len(errors) else None
            summary[f"within_5pct_{label}"] = float((errors <= 0.05).mean()) if len(errors) else None
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["bsds500_val"])
    parser.add_argument("--noise", action="store_true", help="also with the protocol's noise (σ = 2.55)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--jpeg", type=int, default=None, metavar="Q", help="save each photo as a JPEG of quality Q")
    parser.add_argument("--out", default="benchmarks/results/defocus_detection")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, results, per_image = time.time(), {}, []
    for name in args.sets:
        folder = Path(name) if Path(name).is_dir() else corpus.default_data_dir() / name
        for noise in (False, True) if args.noise else (False,):
            rows = {blur: [] for blur in BLURS}
            for blur, i, image, radius in blurred_images(folder, noise, args.limit, args.jpeg):
                estimate = estimate_defocus(image)
                row = {"set": folder.name, "noise": noise, "blur": blur, "index": i, "radius": radius}
                row |= {"estimate": estimate.radius, "is_defocus": estimate.is_defocus}
                row["misfit_ratio"] = estimate.misfit / estimate.gaussian_misfit
                rows[blur].append(row)
                per_image.append(row)
            label = f"{folder.name}{' + noise' if noise else ''}{f' + JPEG q{args.jpeg}' if args.jpeg else ''}"
            results[label] = {blur: summarise(r) for blur, r in rows.items()}
            print(label, {b: round(s["called_defocus"], 3) for b, s in results[label].items()}, flush=True)
    report = {"radii": RADII, "results": results, "per_image": per_image, "machine": machine(1)}
    report["seconds"] = time.time() - start
    lines = [
        "Blind defocus detection (`bikanet_hf.defocus_estimation.estimate_defocus`): share of photos called out of "
        f"focus, per blur; disks of radius {', '.join(f'{r:g}' for r in RADII)} px (i mod 5), the same disk over "
        "the left three quarters of the width only, the protocol's Gaussians (quick, random) and camera shake (motion "
        "track), the sharp photo; "
        f"'+ noise': σ = {NOISE_SIGMA}. Radius error: median |r̂/r − 1| "
        "and share within 5%, over all disk-blurred photos / the detected ones. `benchmarks/defocus_detection.py`.",
        "",
        "| set | sharp | gaussian quick | gaussian random | camera shake | disk | disk, right quarter sharp "
        "| disk radius error (all) | (detected) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in results.items():
        calls = " | ".join(f"{100 * row[b]['called_defocus']:.0f}%" for b in BLURS)
        disk = row["disk"]
        errors = [
            f"{100 * disk[f'median_error_{s}']:.1f}% / {100 * disk[f'within_5pct_{s}']:.0f}% within 5%"
            if disk[f"median_error_{s}"] is not None
            else "—"
            for s in ("all", "detected")
        ]
        lines.append(f"| {label} | {calls} | {errors[0]} | {errors[1]} |")
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
