"""JPEG: the protocol's blurred photos saved as JPEGs, as users' photos come. What does BIKAnet gain on them?

Outside the protocol (its blurred images are lossless 8-bit): the pairs of ``--track`` on ``--set`` are blurred as the
protocol says, then saved as a JPEG of each ``--qualities`` and read back (``bikanet_hf.image_io.jpeg_roundtrip``).
Columns, each with the true kernel and blind (the amortized estimate, narrowed as ``deblur()`` does): BIKAnet told
the noise level it measures (``measured``: JPEG keeps flat blocks flat, so it reads such photos as clean), told at
least ``JPEG_NOISE_LEVEL`` grey levels, as ``deblur()`` does for JPEG files (``floor``), and as ``deblur()`` runs the
same pixels passed as an array (``array``: the floor where they show a JPEG's 8×8 blocks,
``bikanet_hf.modeling_bikanet.shows_jpeg_blocks``, else measured; ``flagged``: the share of photos that do). PSNR /
SSIM on 8-bit images, one pass, float32; the lossless row is the protocol's own (its floor column shows what the
floor would cost a lossless photo).

Usage: ``python benchmarks/jpeg.py [--qualities 95 90 75] [--limit N]``; writes ``benchmarks/results/jpeg.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.deblurring import JPEG_NOISE_LEVEL, jpeg_noise_level
from bikanet_hf.estimation import estimate_kernel, load_estimator
from bikanet_hf.image_io import jpeg_roundtrip, to_tensor
from bikanet_hf.metrics import psnr, ssim
from bikanet_hf.modeling_bikanet import BikanetForImageDeblurring, shows_jpeg_blocks
from bikanet_hf.protocol import protocol_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import format_cell, model_deblur, score  # noqa: E402

COLUMNS = (
    "blurred",
    "true, measured",
    "true, floor",
    "true, array",
    "blind, measured",
    "blind, floor",
    "blind, array",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bikanet_hf/checkpoints/bikanet")
    parser.add_argument("--set", default="bsds500_val")
    parser.add_argument("--track", default="quick")
    parser.add_argument("--qualities", type=int, nargs="+", default=[95, 90, 75])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/jpeg")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = BikanetForImageDeblurring.from_pretrained(args.model).for_inference()
    estimator = load_estimator(Path(args.model) / "kernel_estimator")
    folder = Path(args.set) if Path(args.set).is_dir() else corpus.default_data_dir() / args.set
    rows: dict[str, dict[str, list]] = {}
    flags: dict[str, list[bool]] = {}
    start = time.time()
    for pair in protocol_pairs(folder, args.track, limit=args.limit):
        for quality in (None, *args.qualities):
            blurred = pair.blurred if quality is None else jpeg_roundtrip(pair.blurred, quality)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # slight-blur warnings for the smallest kernels
                estimate = estimate_kernel(blurred, estimator=estimator, for_deblurring=True)
            floor = jpeg_noise_level(blurred)[0]
            outputs = {
                "blurred": blurred,
                "true, measured": model_deblur(model, blurred, pair.kernel),
                "true, floor": model_deblur(model, blurred, pair.kernel, noise_level=floor),
                "blind, measured": model_deblur(model, blurred, estimate, estimated=True),
                "blind, floor": model_deblur(model, blurred, estimate, estimated=True, noise_level=floor),
            }
            flagged = bool(shows_jpeg_blocks(to_tensor(blurred)[None])[0])
            for track in ("true", "blind"):
                outputs[f"{track}, array"] = outputs[f"{track}, {'floor' if flagged else 'measured'}"]
            label = "lossless" if quality is None else f"JPEG q{quality}"
            row = rows.setdefault(label, {c: [] for c in COLUMNS})
            flags.setdefault(label, []).append(flagged)
            for column, image in outputs.items():
                row[column].append((psnr(pair.sharp, image), ssim(pair.sharp, image)))
        print(pair.name, flush=True)
    results = {
        label: {c: score(r[c], r["blurred"]) for c in COLUMNS}
        | {"flagged_share": sum(flags[label]) / len(flags[label])}
        for label, r in rows.items()
    }
    report = {
        "set": folder.name,
        "track": args.track,
        "jpeg_noise_level": JPEG_NOISE_LEVEL,
        "model": args.model,
        "results": results,
        "machine": machine(args.threads),
        "seconds": time.time() - start,
    }
    lines = [
        f"JPEG: {folder.name} {args.track} pairs ({len(rows['lossless']['blurred'])}), blurred by the protocol, then "
        "saved as JPEGs of each quality. PSNR (dB) / SSIM (gain over the blurred input). BIKAnet with the true kernel "
        "and blind, told the noise level it measures, at least "
        f"{JPEG_NOISE_LEVEL:g} grey levels (floor, as deblur() does for JPEG files; on the lossless row it shows "
        "what the floor would cost), or as deblur() runs the pixels as an array (array: the floor where they show a "
        "JPEG's 8×8 blocks — flagged — else measured). `benchmarks/jpeg.py`.",
        "",
        "| photos | flagged | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for label, row in results.items():
        cells = " | ".join(format_cell(c, row[c]) for c in COLUMNS)
        lines.append(f"| {label} | {row['flagged_share']:.0%} | {cells} |")
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
