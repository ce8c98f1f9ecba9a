"""Blind deblurring (``bikanet_hf.deblur``) on the CPU: seconds per megapixel and peak memory by photo size, and how
much the overlapping tiles change the result.

* Throughput: a wikiphotos10 photo resized to 0.25, 1, 4 and 24 megapixels (3:2), blurred as the protocol does,
  deblurred blind with the default tiles (512, overlap 64). Each size runs in its own process, so that its peak
  resident memory (``ru_maxrss``) is its own; the memory of a process that only loaded the models is reported too.
* Tiles: 1024×1024 crops (resized from wikiphotos10) blurred with bank16 kernels, deblurred with the true kernel in
  one pass and in 512-pixel tiles; PSNR of each against the sharp image, and their difference.

Usage: ``python benchmarks/deblur_speed.py [--threads 2]``; writes ``benchmarks/results/deblur_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image
from timing import machine, write_results

from bikanet_hf import corpus, deblur
from bikanet_hf.deblurring import load_model
from bikanet_hf.estimation import load_estimator
from bikanet_hf.kernels import bank16, degrade
from bikanet_hf.metrics import psnr

SIZES_MP = (0.25, 1.0, 4.0, 24.0)


def photo(megapixels: float, index: int = 1) -> np.ndarray:
    """wikiphotos10 photo ``index`` resized (Lanczos) to about ``megapixels`` at 3:2."""
    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    source = Image.open(corpus.default_data_dir() / "wikiphotos10" / f"{index:03d}.png").convert("RGB")
    return np.asarray(source.resize((width, height), Image.Resampling.LANCZOS))


def measure_one(megapixels: float, threads: int) -> dict:
    """Run in a child process: load the models, deblur one blurred photo blind, report times and peak memory."""
    torch.set_num_threads(threads)
    load_model(), load_estimator()
    loaded_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if megapixels == 0:
        return {"peak_rss_mb": loaded_rss}
    blurred = degrade(photo(megapixels), bank16()[5])
    start = time.perf_counter()
    result = deblur(blurred)
    total = time.perf_counter() - start
    pixels = blurred.shape[0] * blurred.shape[1]
    return {
        "width": blurred.shape[1],
        "height": blurred.shape[0],
        "megapixels": pixels / 1e6,
        "seconds": total,
        "seconds_per_megapixel": total / (pixels / 1e6),
        "estimate_seconds": result.seconds["estimate"],
        "deblur_seconds": result.seconds["deblur"],
        "tiles": result.num_tiles,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def tiles_against_one_pass(count: int) -> dict:
    rows = []
    for i in range(count):
        source = Image.open(corpus.default_data_dir() / "wikiphotos10" / f"{i + 1:03d}.png").convert("RGB")
        side = min(source.size)
        sharp = np.asarray(source.crop((0, 0, side, side)).resize((1024, 1024), Image.Resampling.LANCZOS))
        kernel = bank16()[(5 * i) % 16]
        blurred = degrade(sharp, kernel)
        whole = np.asarray(deblur(blurred, kernel, tile_size=None).image)
        tiled = deblur(blurred, kernel)
        rows.append(
            {
                "image": f"wikiphotos10/{i + 1:03d}.png",
                "kernel": (5 * i) % 16,
                "tiles": tiled.num_tiles,
                "psnr_one_pass": psnr(sharp, whole),
                "psnr_tiled": psnr(sharp, np.asarray(tiled.image)),
                "psnr_tiled_vs_one_pass": psnr(whole, np.asarray(tiled.image)),
            }
        )
        print(rows[-1], flush=True)
    diff = [abs(r["psnr_tiled"] - r["psnr_one_pass"]) for r in rows]
    return {
        "images": rows,
        "max_abs_psnr_difference_db": float(max(diff)),
        "mean_abs_psnr_difference_db": float(np.mean(diff)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--tile_images", type=int, default=4, help="1024×1024 images for the tile check")
    parser.add_argument("--out", default="benchmarks/results/deblur_speed", help="output path prefix")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure_one(args.child, args.threads)))
        return
    sizes = {}
    for megapixels in (0.0, *SIZES_MP):
        command = [sys.executable, __file__, "--child", str(megapixels), "--threads", str(args.threads)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        sizes["models_loaded" if megapixels == 0 else f"{megapixels:g}MP"] = json.loads(
            output.strip().splitlines()[-1]
        )
        print(megapixels, sizes[list(sizes)[-1]], flush=True)
    torch.set_num_threads(args.threads)
    tiles = tiles_against_one_pass(args.tile_images)
    report = {
        "what": "blind bikanet_hf.deblur on the CPU (amortized estimate + BIKAnet, 512-pixel tiles, overlap 64)",
        "sizes": sizes,
        "tiles_vs_one_pass_1024": tiles,
        **machine(args.threads),
    }
    lines = [
        f"Blind `bikanet_hf.deblur` on the CPU ({args.threads} threads, torch {torch.__version__}), one process per "
        "size; peak memory is the process's maximum resident set, models included "
        f"({sizes['models_loaded']['peak_rss_mb']:.0f} MB with only the models loaded).\n",
        "| photo | pixels | tiles | estimate (s) | deblur (s) | s / MP | peak memory (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in sizes.items():
        if name != "models_loaded":
            lines.append(
                f"| {name} | {r['width']}×{r['height']} | {r['tiles']} | {r['estimate_seconds']:.2f} | "
                f"{r['deblur_seconds']:.1f} | {r['seconds_per_megapixel']:.2f} | {r['peak_rss_mb']:.0f} |"
            )
    lines += [
        "",
        f"Tiles against one pass on {len(tiles['images'])} 1024×1024 photos (true kernel): PSNR differs by at most "
        f"{tiles['max_abs_psnr_difference_db']:.3f} dB (mean {tiles['mean_abs_psnr_difference_db']:.3f} dB).",
    ]
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
