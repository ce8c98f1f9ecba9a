"""Speed and memory of every method on the CPU, by photo size, and how much the overlapping tiles change the result.

* Throughput: a wikiphotos10 photo resized to 0.25, 1, 4 and 24 megapixels (3:2), blurred as the protocol does and
  saved as PNG. Each (method, size) runs in its own process that reads that file ``--repeats`` times (the median time
  is reported, as the protocol asks; the first run also pays one-time costs), so that its peak resident memory
  (``VmHWM``) is its own; a process that only imports and loads the models is measured too. Methods:
  ``bikanet-blind`` (``bikanet_hf.deblur``: amortized estimate, then BIKAnet in 512-pixel tiles; both stages timed),
  ``bikanet`` (known kernel), ``refine`` (the KernelGAN estimate alone, 300 steps), and the peers ``wiener`` and
  ``richardson-lucy`` (skimage, true kernel, the settings of ``benchmarks/quality.py``) and ``polyblur`` (blind).
  Methods slower than ``--max_seconds`` at one size are not run at the larger ones.
* Tiles: 1024×1024 crops (resized from wikiphotos10) blurred with bank16 kernels, deblurred with the true kernel in
  one pass and in 512-pixel tiles; PSNR of each against the sharp image, and their difference.

Usage: ``python benchmarks/speed.py [--threads 2]``; writes ``benchmarks/results/speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timing import machine, write_results

from bikanet_hf import corpus, deblur
from bikanet_hf.deblurring import load_model
from bikanet_hf.estimation import estimate_kernel, load_estimator
from bikanet_hf.image_io import load_rgb
from bikanet_hf.kernels import bank16, degrade
from bikanet_hf.metrics import psnr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import polyblur_deblur, wiener_deblur  # noqa: E402

SIZES_MP = (0.25, 1.0, 4.0, 24.0)
KERNEL_ID = 5  # bank16: σ 2.5 × 1.0 at 30°
METHODS = ("bikanet-blind", "bikanet", "refine", "wiener", "richardson-lucy", "polyblur")
WIENER_BALANCE, RL_ITERATIONS = 1e-4, 40  # as tuned by benchmarks/quality.py on bsds500_val


def photo(megapixels: float, index: int = 1) -> np.ndarray:
    """wikiphotos10 photo ``index`` resized (Lanczos) to about ``megapixels`` at 3:2."""
    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    source = Image.open(corpus.default_data_dir() / "wikiphotos10" / f"{index:03d}.png").convert("RGB")
    return np.asarray(source.resize((width, height), Image.Resampling.LANCZOS))


def peak_memory_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, it starts afresh at ``exec``, so a
    child does not inherit its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # where /proc is missing


def measure_one(method: str, path: str, threads: int, repeats: int) -> dict:
    """In a child process: run ``method`` ``repeats`` times on the blurred photo file ``path``; the median time (and
    stages) and the peak memory over all runs ("": only load the models)."""
    torch.set_num_threads(threads)
    load_model(), load_estimator()
    if not path:
        return {"peak_rss_mb": peak_memory_mb()}
    kernel = bank16()[KERNEL_ID]
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        stages = {}
        if method in ("bikanet-blind", "bikanet"):
            result = deblur(path, None if method == "bikanet-blind" else kernel)
            stages = {"estimate_seconds": result.seconds["estimate"], "deblur_seconds": result.seconds["deblur"]}
            shape = result.image.size[::-1]
        else:
            blurred = load_rgb(path)
            shape = blurred.shape[:2]
            if method == "refine":
                estimate_kernel(blurred, "refine")
            elif method == "wiener":
                wiener_deblur(blurred, kernel, WIENER_BALANCE)
            elif method == "richardson-lucy":
                from quality import richardson_lucy_deblur

                richardson_lucy_deblur(blurred, kernel, RL_ITERATIONS)
            else:
                polyblur_deblur(blurred)
        runs.append({"seconds": time.perf_counter() - start, **stages})
    median = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
    megapixels = shape[0] * shape[1] / 1e6
    return {
        "width": shape[1],
        "height": shape[0],
        **median,
        "seconds_per_megapixel": median["seconds"] / megapixels,
        "run_seconds": [run["seconds"] for run in runs],
        "peak_rss_mb": peak_memory_mb(),
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
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="methods to time")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method and size; the median is reported")
    parser.add_argument("--max_seconds", type=float, default=60, help="skip larger sizes after a run this slow")
    parser.add_argument("--tile_images", type=int, default=4, help="1024×1024 images for the tile check")
    parser.add_argument("--out", default="benchmarks/results/speed", help="output path prefix")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure_one(args.child[0], args.child[1], args.threads, args.repeats)))
        return
    runs: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for megapixels in SIZES_MP:  # blurred here, so that a child's peak memory is its method's own
            paths[megapixels] = str(Path(folder) / f"{megapixels:g}MP.png")
            Image.fromarray(degrade(photo(megapixels), bank16()[KERNEL_ID])).save(paths[megapixels])

        def child(method: str, path: str) -> dict:
            command = [sys.executable, __file__, "--child", method, path, "--threads", str(args.threads)]
            command += ["--repeats", str(args.repeats)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            return json.loads(output.strip().splitlines()[-1])

        runs["models_loaded"] = child("bikanet", "")
        for method in args.methods:
            runs[method] = {}
            for megapixels in SIZES_MP:
                runs[method][f"{megapixels:g}MP"] = result = child(method, paths[megapixels])
                print(method, megapixels, result, flush=True)
                if result["seconds"] > args.max_seconds:
                    break
    torch.set_num_threads(args.threads)
    tiles = tiles_against_one_pass(args.tile_images)
    report = {
        "what": "CPU seconds and peak memory per method and photo size; tiled against one-pass BIKAnet",
        "kernel": f"bank16[{KERNEL_ID}]",
        "runs": runs,
        "tiles_vs_one_pass_1024": tiles,
        **machine(args.threads),
    }
    sizes = [f"{m:g}MP" for m in SIZES_MP]
    lines = [
        f"CPU, {args.threads} threads, torch {torch.__version__}; one process per method and size, the median of "
        f"{args.repeats} runs in it; seconds per megapixel, and peak memory (the process's maximum resident set over "
        "its runs, models included: "
        f"{runs['models_loaded']['peak_rss_mb']:.0f} MB with only the models loaded). `–`: not run (the method took "
        f"over {args.max_seconds:g} s at a smaller size).\n",
        "| method | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method in args.methods:
        cells = []
        for size in sizes:
            r = runs[method].get(size)
            cells.append("–" if r is None else f"{r['seconds_per_megapixel']:.2f} s/MP, {r['peak_rss_mb']:.0f} MB")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    blind = runs.get("bikanet-blind", {})
    if blind:
        lines += ["", "Stages of `bikanet-blind` (seconds): estimate / deblur (tiles)."]
        lines += [
            f"- {size} ({r['width']}×{r['height']}): {r['estimate_seconds']:.2f} / {r['deblur_seconds']:.1f}"
            for size, r in blind.items()
        ]
    lines += [
        "",
        f"Tiles against one pass on {len(tiles['images'])} 1024×1024 photos (true kernel): PSNR differs by at most "
        f"{tiles['max_abs_psnr_difference_db']:.3f} dB (mean {tiles['mean_abs_psnr_difference_db']:.3f} dB).",
    ]
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
