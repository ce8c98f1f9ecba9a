"""How much context each tile needs: one known kernel, deblurred in tiles of several sides with ``tile_context`` px of
the photo around each tile (``deblur_tiled``), against the default 512-px memory tiles.

Outside the protocol (it measures tiling, not a method); its steps otherwise (mirror padding, 8-bit). The top-left
768×1024 of the first ``--limit`` wikiphotos10 photos, blurred with a Gaussian (σ 2.5 × 1.5 px at 30°) and with the
defocus disks of radius 3.5 and 5 px, deblurred by the main model with the true kernel (``restore``, float32). A
lens's disk is undone from further out than a tile's overlap hides its border; a Gaussian is not. Reports PSNR (dB)
per kernel and layout, averaged over the photos, and seconds per photo.

    python benchmarks/tile_context.py [--limit 3] [--out benchmarks/results/tile_context]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.deblurring import load_model, restore
from bikanet_hf.image_io import list_images, load_rgb
from bikanet_hf.kernels import defocus_kernel, degrade, gaussian_kernel
from bikanet_hf.metrics import psnr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import machine, write_results  # noqa: E402

KERNELS = {
    "Gaussian 2.5 × 1.5 px": gaussian_kernel(2.5, 1.5, 30.0),
    "disk r = 3.5 px": defocus_kernel(3.5),
    "disk r = 5 px": defocus_kernel(5.0),
}
LAYOUTS = ((512, 64, 0), (256, 64, 0), (256, 64, 16), (256, 64, 32), (256, 64, 64), (384, 96, 0), (384, 96, 48))
CROP = (768, 1024)


def name(layout: tuple[int, int, int]) -> str:
    side, overlap, context = layout
    return f"{side}/{overlap}" + (f" +{context}" if context else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=3, help="wikiphotos10 photos (default: 3)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--out", default="benchmarks/results/tile_context", help="output path prefix")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, model = time.time(), load_model()
    photos = list_images(corpus.default_data_dir() / "wikiphotos10")[: args.limit]
    scores = {k: {name(layout): [] for layout in LAYOUTS} for k in KERNELS}
    seconds = {name(layout): [] for layout in LAYOUTS}
    with torch.inference_mode():
        for index, path in enumerate(photos):
            sharp = load_rgb(path)[: CROP[0], : CROP[1]]
            for kernel_name, kernel in KERNELS.items():
                blurred = degrade(sharp, kernel)
                for layout in LAYOUTS:
                    side, overlap, context = layout
                    tick = time.perf_counter()
                    out = restore(model, blurred, kernel, tile_size=side, tile_overlap=overlap, tile_context=context)
                    seconds[name(layout)].append(time.perf_counter() - tick)
                    scores[kernel_name][name(layout)].append(psnr(sharp, out[0]))
            print(f"{index + 1}/{len(photos)} {path.name}", flush=True)
    results = {k: {layout: float(np.mean(v)) for layout, v in row.items()} for k, row in scores.items()}
    mean_seconds = {layout: float(np.mean(v)) for layout, v in seconds.items()}
    report = {
        "what": "one known kernel deblurred in tiles with context around each (see the script)",
        "psnr": results,
        "psnr_per_photo": scores,
        "seconds_per_photo": mean_seconds,
        "photos": [path.name for path in photos],
        "crop": CROP,
        "machine": machine(args.threads),
        "seconds": time.time() - start,
    }
    columns = [name(layout) for layout in LAYOUTS]
    lines = [
        f"PSNR (dB) of the top-left {CROP[0]}×{CROP[1]} of the first {len(photos)} wikiphotos10 photos deblurred with "
        "the true kernel in tiles: `side/overlap +context` (`deblur_tiled`'s `tile_size`, `tile_overlap`, "
        "`tile_context`); 512/64 is the default for one kernel, 256/64 +32 and 384/96 +48 what a kernel per tile "
        "takes. `benchmarks/tile_context.py`.",
        "",
        "| kernel | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
        *(f"| {k} | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |" for k, row in results.items()),
        "",
        f"Seconds per photo and kernel (CPU, {args.threads} threads, float32): "
        + ", ".join(f"{c} {mean_seconds[c]:.1f}" for c in columns),
    ]
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
