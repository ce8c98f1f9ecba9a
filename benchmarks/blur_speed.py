"""Direct grouped convolution vs FFT for the blur operator, per kernel size, to place ``FFT_MIN_TAPS``.

Usage: ``python benchmarks/blur_speed.py [--threads 2] [--out benchmarks/results/blur_speed.json]``
"""

from __future__ import annotations

import argparse
import json

import torch
from timing import machine, median_seconds

import bikanet_hf.kernels as K


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--batch", type=int, default=8, help="images per call (default: 8)")
    parser.add_argument("--image-size", type=int, default=256, help="square image side in pixels (default: 256)")
    parser.add_argument("--out", default="benchmarks/results/blur_speed.json", help="where to write the JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.rand(args.batch, 3, args.image_size, args.image_size) * 255
    rows = []
    threshold = K.FFT_MIN_TAPS
    try:
        for size in (9, 17, 25, 33, 41, 49, 67):
            kernels = torch.rand(args.batch, size, size)
            row = {"kernel_size": size}
            for mode, taps in (("direct", 10**9), ("fft", 1)):
                K.FFT_MIN_TAPS = taps
                row[f"{mode}_s"] = median_seconds(lambda k=kernels: K.blur(images, k))
            rows.append(row)
            print(row)
    finally:
        K.FFT_MIN_TAPS = threshold
    result = {
        "what": f"blur() of {args.batch}x3x{args.image_size}x{args.image_size} float32, median of 5 runs",
        **machine(args.threads),
        "fft_min_taps_in_code": threshold,
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
