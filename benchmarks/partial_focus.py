"""A photo partly in focus: a sharp subject before a background blurred by a lens's defocus disk. One kernel per
photo against a disk per tile (``deblur(..., blur_type="defocus", spatially_varying=True)``).

Outside the protocol (its blur is uniform); its steps otherwise (mirror padding, 8-bit). Photo ``i`` of wikiphotos10
(large photos, so that each spans several tiles), drawn from ``default_rng([seed, i])``:

* ``partly in focus`` — an elliptical subject (centre in the middle half of the photo, semi-axes 20–35% of its sides)
  kept sharp, the rest blurred with the disk of radius 2.5, 3.5 or 5 px (``i mod 3``), the two blended over a 16-px
  edge;
* ``out of focus`` — the whole photo blurred with that disk (the per-tile method should lose little to one disk);
* ``sharp`` — the photo as it is (a method that finds disks where there are none makes it worse).

Columns: the blurred input; ``true, per tile``: each 256-px tile deblurred with the disk when it is wholly background,
else with a delta; blind: ``auto, one kernel`` (``deblur(image)``, the default), ``defocus, one disk``
(``blur_type="defocus"``), and per tile (``spatially_varying=True``): ``auto`` (a disk where a tile shows one, else a
Gaussian estimate; the default blur type), ``gaussian`` and ``defocus`` (a disk where a tile shows one, else a delta),
256-px tiles overlapping by 64 as the app uses them for a lens's disk (``--tile``, ``--overlap``: others; the
one-kernel columns keep ``deblur``'s default tiles). PSNR / SSIM against the sharp photo; for the ``sharp`` row,
against the photo itself. With ``--jpeg Q``, each input is saved as a JPEG of quality Q and read back (as users'
photos come; the ``sharp`` row is then scored against the photo before compression).

Usage: ``python benchmarks/partial_focus.py [--limit N] [--jpeg Q] [--tile T] [--overlap O]`` (default: the first 6
of the 10); writes ``benchmarks/results/partial_focus.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.deblurring import PARTLY_DEFOCUSED_TILE, deblur, load_model, restore
from bikanet_hf.image_io import jpeg_roundtrip, list_images, load_rgb
from bikanet_hf.kernels import defocus_kernel, degrade, delta_kernel
from bikanet_hf.metrics import psnr, ssim
from bikanet_hf.modeling_bikanet import tile_windows

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import score  # noqa: E402
from timing import machine, write_results  # noqa: E402

RADII = (2.5, 3.5, 5.0)
DEFAULT_TILE = PARTLY_DEFOCUSED_TILE  # as the app's tiles for a lens's disk per tile (overlapping by a quarter)
BLIND = {
    "auto, one kernel": {},
    "defocus, one disk": {"blur_type": "defocus"},
    "auto, per tile": {"spatially_varying": True},
    "gaussian, per tile": {"blur_type": "gaussian", "spatially_varying": True},
    "defocus, per tile": {"blur_type": "defocus", "spatially_varying": True},
}


def subject_mask(rng: np.random.Generator, shape: tuple[int, int], edge: float = 16.0) -> np.ndarray:
    """``H×W`` weights of the sharp subject: 1 inside a random ellipse, 0 outside, a linear ramp ``edge`` px wide."""
    height, width = shape
    cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
    ay, ax = rng.uniform(0.2, 0.35) * height, rng.uniform(0.2, 0.35) * width
    y, x = np.mgrid[:height, :width]
    radius = np.hypot((y - cy) / ay, (x - cx) / ax)  # 1 on the ellipse
    distance = (1 - radius) * min(ay, ax)  # about px inside the edge
    return np.clip(distance / edge + 0.5, 0.0, 1.0)


def true_tile_kernels(mask: np.ndarray, disk: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Per tile of ``tile_windows`` (``tile`` px, overlapping by ``overlap``): ``disk`` for a tile wholly in the
    background, a delta for one with any of the subject (the disk would over-sharpen the subject's part)."""
    delta = delta_kernel(disk.shape[0])
    windows = tile_windows(*mask.shape, tile, overlap)
    return np.stack([disk if mask[t:b, l:r].max() < 0.5 else delta for t, b, l, r in windows])


def table(results: dict, columns: list[str]) -> list[str]:
    """Markdown rows: PSNR / SSIM of each column and its gain over the input (none for the ``sharp`` row, whose input
    is the photo itself)."""
    lines = ["| photos | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for track, row in results.items():
        cells = []
        for name in columns:
            v = row.get(name)
            cell = "–" if v is None else f"{v['psnr']:.2f} / {v['ssim']:.3f}"
            if v is not None and name != "blurred" and v["delta_psnr"] is not None:
                cell += f" ({v['delta_psnr']:+.2f})"
            cells.append(cell)
        lines.append(f"| {track} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=6, help="wikiphotos10 photos per row (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument(
        "--jpeg", type=int, default=None, metavar="Q", help="save each input as a JPEG of quality Q and read it back"
    )
    p.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_TILE,
        help=f"side of the per-tile columns' tiles (default: {DEFAULT_TILE}, as the app)",
    )
    p.add_argument("--overlap", type=int, default=None, help="their overlap (default: a quarter of the side)")
    p.add_argument("--out", default="benchmarks/results/partial_focus", help="output path prefix")
    args = p.parse_args()
    tile = args.tile
    overlap = tile // 4 if args.overlap is None else args.overlap
    tiles = {"tile_size": tile, "tile_overlap": overlap}  # the per-tile columns' only: one kernel keeps the default
    blind = {
        name: {**tiles, **options} if "spatially_varying" in options else options for name, options in BLIND.items()
    }
    torch.set_num_threads(args.threads)
    start, model = time.time(), load_model()
    results, seconds = {}, {}
    for track in ("partly in focus", "out of focus", "sharp"):
        rows: dict[str, list[tuple[float, float]]] = {}
        for i, path in enumerate(list_images(corpus.default_data_dir() / "wikiphotos10")[: args.limit]):
            sharp = load_rgb(path)
            rng = np.random.default_rng([args.seed, i])
            disk = defocus_kernel(RADII[i % len(RADII)])
            mask = subject_mask(rng, sharp.shape[:2]) if track == "partly in focus" else None
            if track == "sharp":
                blurred = sharp
            else:
                blurred = degrade(sharp, disk)
                if mask is not None:
                    blurred = np.round(mask[..., None] * sharp + (1 - mask[..., None]) * blurred).astype(np.uint8)
            blurred = blurred if args.jpeg is None else jpeg_roundtrip(blurred, args.jpeg)
            outputs = {}
            if track == "partly in focus":
                true_kernels = true_tile_kernels(mask, disk, tile, overlap)
                outputs["true, per tile"] = restore(model, blurred, true_kernels, **tiles)[0]  # as deblur's per tile
            for name, options in blind.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # slight-blur warnings on the sharp row
                    result = deblur(blurred, model=model, precision="float32", **options)
                outputs[name] = np.asarray(result.image)
                seconds.setdefault(name, []).append(result.seconds["total"])
            for name, out in {"blurred": blurred, **outputs}.items():
                rows.setdefault(name, []).append((psnr(sharp, out), ssim(sharp, out)))
            print(f"{track} {i + 1}/{args.limit} {path.name}", flush=True)
        results[track] = {name: score(values, rows["blurred"]) for name, values in rows.items()}
        if track == "sharp" and args.jpeg is None:  # the input is the photo itself: no finite PSNR, no gain over it
            results[track] = {
                name: {**v, "delta_psnr": None} for name, v in results[track].items() if name != "blurred"
            }
    mean_seconds = {name: float(np.mean(v)) for name, v in seconds.items()}
    report = {
        "what": "a photo partly in focus: one kernel per photo vs a defocus disk per tile (see the script)",
        "results": results,
        "blind_seconds_per_photo": mean_seconds,
        "radii": RADII,
        "tile": [tile, overlap],
        "seed": args.seed,
        "jpeg_quality": args.jpeg,
        "machine": machine(args.threads),
        "seconds": time.time() - start,
    }
    legend = (
        "PSNR (dB) / SSIM (ΔPSNR over the input). The photos of wikiphotos10: `partly in focus`, an elliptical sharp "
        f"subject before a background blurred by a defocus disk (radius {', '.join(f'{r:g}' for r in RADII)} px, "
        "photo i mod 3); `out of focus`, all of it blurred by that disk; `sharp`, the photo as it is (scored "
        f"against itself). `true, per tile`: each {tile}-px tile deblurred with the disk when it is wholly "
        "background, else a delta. Blind: `auto, one kernel` is `deblur(image)`; `defocus, one disk` "
        '`blur_type="defocus"`; `auto, per tile`, `gaussian, per tile` and `defocus, per tile` '
        "`spatially_varying=True` with that blur type (auto: a disk where a tile shows one, else a Gaussian "
        f"estimate; defocus: else a delta; {tile}-px tiles, overlap {overlap})"
        + (f". Every input saved as a JPEG of quality {args.jpeg} and read back" if args.jpeg else "")
        + ". `benchmarks/partial_focus.py`."
    )
    timing = f"Blind, seconds per photo (CPU, {args.threads} threads, float32): " + ", ".join(
        f"{name} {value:.1f}" for name, value in mean_seconds.items()
    )
    write_results(args.out, report, [legend, "", *table(results, ["blurred", "true, per tile", *BLIND]), "", timing])


if __name__ == "__main__":
    main()
