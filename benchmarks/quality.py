"""The quality benchmark: every method against its peers in one run, following ``shared/PROTOCOL.md``.

Methods (columns): the blurred input; Wiener and Richardson–Lucy with the true kernel (skimage; Wiener's balance and
R–L's iteration count tuned on the first ``--tune_limit`` quick pairs of bsds500_val, then fixed); Polyblur (blind;
the ``polyblur`` package with its IPOL-demo settings); BIKAnet with the true kernel; BIKAnet blind with the amortized
estimate; BIKAnet blind with the KernelGAN refinement of it (on the first ``--gan_limit`` pairs of each set and track,
as it trains a GAN per image); and any further BIKAnet variants given with ``--model NAME=FOLDER`` (the ablations).
Rows: bsds500_val, set14 and mcmaster18 on the quick and random tracks, and set5 on the full track (every bank16
kernel). Reported: PSNR, SSIM, ΔPSNR over the blurred input, kernel error Σ|k̂ − k| of each estimate.

Plots (PNG, next to the tables): ΔPSNR per bank16 kernel for each method (bsds500_val full track on its first
``--per_kernel_images`` images), a grid of crops (blurred / each method / sharp) for two images, and kernel
estimates beside the true kernels.

Usage: ``python benchmarks/quality.py [--model no-ka-ae=runs/abl-no-ka] [--quick_check]``
Writes ``benchmarks/results/quality.{json,md}`` and ``benchmarks/results/quality_*.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.restoration import richardson_lucy

from bikanet_hf import corpus
from bikanet_hf.deblurring import load_model
from bikanet_hf.estimation import METHODS, estimate_kernel, load_estimator, narrow_kernel
from bikanet_hf.kernels import kernel_to_image
from bikanet_hf.metrics import kernel_l1, psnr, ssim
from bikanet_hf.modeling_bikanet import BikanetForImageDeblurring
from bikanet_hf.protocol import protocol_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import (  # noqa: E402
    POLYBLUR_SETTINGS,
    model_deblur,
    polyblur_deblur,
    polyblur_kernel,
    tune_wiener_balance,
    wiener_deblur,
)

RL_ITERATIONS = (5, 10, 20, 40)
ROWS = [("bsds500_val", "quick"), ("bsds500_val", "random"), ("set14", "quick"), ("set14", "random")]
ROWS += [("mcmaster18", "quick"), ("mcmaster18", "random"), ("set5", "full")]


def richardson_lucy_deblur(blurred: np.ndarray, kernel: np.ndarray, iterations: int) -> np.ndarray:
    """skimage's Richardson–Lucy per channel on the reflect-padded image (padding keeps its FFT borders away)."""
    pad = kernel.shape[0]
    x = np.pad(blurred.astype(np.float64) / 255.0, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([richardson_lucy(x[..., c], kernel, num_iter=iterations, clip=True) for c in range(3)], -1)
    return np.clip(np.round(out[pad:-pad, pad:-pad] * 255.0), 0, 255).astype(np.uint8)


def tune_richardson_lucy(pairs: list) -> tuple[int, dict]:
    sweep = {
        n: float(np.mean([psnr(p.sharp, richardson_lucy_deblur(p.blurred, p.kernel, n)) for p in pairs]))
        for n in RL_ITERATIONS
    }
    return max(sweep, key=sweep.get), sweep


class Methods:
    """Every method as ``name → f(pair) → (restored uint8, estimated kernel or None)``."""

    def __init__(self, args, balance: float, iterations: int):
        self.model = load_model(args.bikanet)
        self.estimator = load_estimator(args.estimator)
        self.variants = {
            name: BikanetForImageDeblurring.from_pretrained(path).eval()
            for name, _, path in (spec.partition("=") for spec in args.model)
        }
        self.balance, self.iterations = balance, iterations
        self.refine = "refine" in METHODS and args.gan_limit > 0
        self.gan_limit = args.gan_limit

    def names(self) -> list[str]:
        names = ["wiener", "richardson-lucy", "polyblur", "bikanet", "bikanet+blind"]
        return names + (["bikanet+refine"] if self.refine else []) + list(self.variants)

    def run(self, name: str, pair, index: int):
        if name == "wiener":
            return wiener_deblur(pair.blurred, pair.kernel, self.balance), None
        if name == "richardson-lucy":
            return richardson_lucy_deblur(pair.blurred, pair.kernel, self.iterations), None
        if name == "polyblur":
            return polyblur_deblur(pair.blurred), None
        if name == "bikanet":
            return model_deblur(self.model, pair.blurred, pair.kernel), None
        if name in ("bikanet+blind", "bikanet+refine"):
            if name == "bikanet+refine" and index >= self.gan_limit:
                return None, None
            method = "amortized" if name == "bikanet+blind" else "refine"
            kernel = estimate_kernel(pair.blurred, method, estimator=self.estimator)
            # What deblur() uses: the same estimate narrowed (KernelGAN is not trained twice for it).
            used = narrow_kernel(kernel, self.estimator)
            return model_deblur(self.model, pair.blurred, used, estimated=True), kernel
        return model_deblur(self.variants[name], pair.blurred, pair.kernel), None


def evaluate_row(methods: Methods, folder: Path, track: str, limit: int | None) -> tuple[dict, list]:
    pairs = list(protocol_pairs(folder, track=track, limit=limit))
    scores: dict[str, list] = {"blurred": [(psnr(p.sharp, p.blurred), ssim(p.sharp, p.blurred)) for p in pairs]}
    kernels: dict[str, list] = {}
    seconds: dict[str, list] = {}
    examples = []
    for index, pair in enumerate(pairs):
        outputs = {}
        for name in methods.names():
            start = time.perf_counter()
            out, kernel = methods.run(name, pair, index)
            if out is None:
                continue
            seconds.setdefault(name, []).append(time.perf_counter() - start)
            scores.setdefault(name, []).append((psnr(pair.sharp, out), ssim(pair.sharp, out)))
            if kernel is not None:
                kernels.setdefault(name, []).append(kernel_l1(kernel, pair.kernel))
            outputs[name] = (out, kernel)
        if len(examples) < 2 and track == "quick":
            examples.append((pair, outputs))
    blurred_psnr = [s[0] for s in scores["blurred"]]
    row = {}
    for name, rows in scores.items():
        base = float(np.mean(blurred_psnr[: len(rows)]))
        row[name] = {
            "psnr": float(np.mean([r[0] for r in rows])),
            "ssim": float(np.mean([r[1] for r in rows])),
            "delta_psnr": float(np.mean([r[0] for r in rows]) - base),
            "num_pairs": len(rows),
        }
        if name in kernels:
            row[name]["kernel_l1"] = float(np.mean(kernels[name]))
        if name in seconds:
            row[name]["median_seconds"] = float(np.median(seconds[name]))
    return row, examples


def per_kernel(methods: Methods, images: int) -> dict:
    """ΔPSNR per bank16 kernel (bsds500_val full track, the first ``images`` images), for each method."""
    folder = corpus.default_data_dir() / "bsds500_val"
    deltas: dict[str, list[list[float]]] = {}
    for pair in protocol_pairs(folder, track="full", limit=images):
        base = psnr(pair.sharp, pair.blurred)
        for name in methods.names():
            if name == "bikanet+refine":
                continue
            out, _ = methods.run(name, pair, 0)
            deltas.setdefault(name, [[] for _ in range(16)])[pair.kernel_id].append(psnr(pair.sharp, out) - base)
    return {name: [float(np.mean(v)) for v in per] for name, per in deltas.items()}


def plot_per_kernel(per: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.2), dpi=110)
    width = 0.8 / len(per)
    for i, (name, values) in enumerate(per.items()):
        ax.bar(np.arange(16) + (i - len(per) / 2 + 0.5) * width, values, width, label=name)
    ax.set_xticks(range(16), [str(k) for k in range(16)])
    ax.set_xlabel("bank16 kernel (0–3 isotropic σ 1.0–2.8; 4–9 σ 2.5×1.0; 10–15 σ 4.0×1.5, every 30°)")
    ax.set_ylabel("ΔPSNR over the blurred input (dB)")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(ncol=4, fontsize=8)
    ax.set_title("Gain per kernel, bsds500_val (full track)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def crop_grid(examples: list, names: list[str], path: Path, size: int = 160) -> None:
    """Rows: images; columns: blurred, each method, sharp — the same central crop of each, with a label."""
    from PIL import Image, ImageDraw

    columns = ["blurred", *names, "sharp"]
    label = 18
    grid = Image.new("RGB", (len(columns) * size, len(examples) * (size + label)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (pair, outputs) in enumerate(examples):
        h, w = pair.sharp.shape[:2]
        top, left = max(0, h // 2 - size // 2), max(0, w // 2 - size // 2)
        for c, name in enumerate(columns):
            image = (
                pair.blurred if name == "blurred" else pair.sharp if name == "sharp" else outputs.get(name, (None,))[0]
            )
            if image is None:
                continue
            crop = Image.fromarray(np.ascontiguousarray(image[top : top + size, left : left + size]))
            y = r * (size + label)
            grid.paste(crop, (c * size, y + label))
            text = name if name in ("blurred", "sharp") else f"{name} {psnr(pair.sharp, image):.1f}"
            draw.text((c * size + 3, y + 3), text, fill="black")
    grid.save(path)


def kernel_grid(examples: list, path: Path) -> None:
    """For each example image: the true kernel, then each estimate (with its error)."""
    from PIL import Image, ImageDraw

    cell, label = 128, 18
    rows = []
    for pair, outputs in examples:
        row = [("true", pair.kernel)] + [(n, k) for n, (_, k) in outputs.items() if k is not None]
        row.append(("polyblur", polyblur_kernel(pair.blurred)))
        rows.append((pair, row))
    width = max(len(r) for _, r in rows) * cell
    grid = Image.new("RGB", (width, len(rows) * (cell + label)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (pair, row) in enumerate(rows):
        for j, (name, kernel) in enumerate(row):
            grid.paste(kernel_to_image(kernel, size=cell), (j * cell, i * (cell + label) + label))
            text = name if name == "true" else f"{name} L1 {kernel_l1(kernel, pair.kernel):.2f}"
            draw.text((j * cell + 3, i * (cell + label) + 3), text, fill="black")
    grid.save(path)


def markdown(results: dict, names: list[str]) -> str:
    columns = ["blurred", *names]
    lines = ["| set | track | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 2)]
    for key, row in results.items():
        set_name, track = key.split("/")
        cells = []
        for name in columns:
            v = row.get(name)
            if v is None:
                cells.append("–")
                continue
            cell = f"{v['psnr']:.2f} / {v['ssim']:.3f}"
            if name != "blurred":
                cell += f" ({v['delta_psnr']:+.2f})"
            if "kernel_l1" in v:
                cell += f" k {v['kernel_l1']:.2f}"
            if v["num_pairs"] != row["blurred"]["num_pairs"]:
                cell += f" [{v['num_pairs']}]"
            cells.append(cell)
        lines.append(f"| {set_name} | {track} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bikanet", default=None, help="BIKAnet folder (default: the bundled checkpoint)")
    p.add_argument("--estimator", default=None, help="kernel estimator folder (default: the bundled one)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER", help="extra BIKAnet variants")
    p.add_argument("--gan_limit", type=int, default=8, help="pairs per row for KernelGAN refine (default: 8)")
    p.add_argument("--tune_limit", type=int, default=16, help="bsds500_val quick pairs to tune Wiener and R–L on")
    p.add_argument("--per_kernel_images", type=int, default=4, help="bsds500_val images for the per-kernel plot")
    p.add_argument("--limit", type=int, default=None, help="first N images of each set (default: all)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--out", default="benchmarks/results/quality", help="output path prefix")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = corpus.default_data_dir()
    start = time.time()
    tune = list(protocol_pairs(data / "bsds500_val", "quick", limit=args.tune_limit))
    balance, wiener_sweep = tune_wiener_balance(tune)
    iterations, rl_sweep = tune_richardson_lucy(tune)
    print(f"tuned on {len(tune)} bsds500_val quick pairs: Wiener balance {balance:g}, R–L {iterations} iterations")
    methods = Methods(args, balance, iterations)
    results, examples = {}, []
    for set_name, track in ROWS:
        row, row_examples = evaluate_row(methods, data / set_name, track, args.limit)
        results[f"{set_name}/{track}"] = row
        if set_name == "bsds500_val":
            examples += row_examples
        print(set_name, track, {k: round(v["delta_psnr"], 2) for k, v in row.items()}, flush=True)
    per = per_kernel(methods, args.per_kernel_images)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_per_kernel(per, out.with_name(out.name + "_per_kernel.png"))
    crop_grid(examples[:2], methods.names(), out.with_name(out.name + "_crops.png"))
    kernel_grid(examples[:2], out.with_name(out.name + "_kernels.png"))
    report = {
        "protocol": "shared/PROTOCOL.md; PSNR/SSIM on 8-bit RGB, full frame",
        "results": results,
        "per_kernel_delta_psnr_bsds500_val_full": per,
        "tuning": {
            "pairs": f"bsds500_val quick, first {len(tune)}",
            "wiener_balance": balance,
            "wiener_sweep": wiener_sweep,
            "richardson_lucy_iterations": iterations,
            "richardson_lucy_sweep": rl_sweep,
        },
        "polyblur_settings": POLYBLUR_SETTINGS,
        "gan_limit": args.gan_limit,
        "models": {
            "bikanet": args.bikanet or "bundled",
            "estimator": args.estimator or "bundled",
            "extra": args.model,
        },
        "machine": {"threads": args.threads, "torch": torch.__version__, "python": platform.python_version()},
        "seconds": time.time() - start,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    legend = (
        "PSNR (dB) / SSIM (ΔPSNR over the blurred input); `k`: mean kernel error Σ|k̂ − k| of the method's estimate; "
        "`[n]`: the method ran on the first n pairs only (KernelGAN trains per image). Wiener and Richardson–Lucy "
        f"get the true kernel (balance {balance:g}, {iterations} iterations, tuned on {len(tune)} bsds500_val quick "
        "pairs), as does `bikanet`; `polyblur` and `bikanet+blind`/`+refine` are blind.\n\n"
        f"![ΔPSNR per kernel]({out.name}_per_kernel.png)\n\n![crops]({out.name}_crops.png)\n\n"
        f"![kernel estimates]({out.name}_kernels.png)\n\n"
    )
    table = markdown(results, methods.names())
    out.with_suffix(".md").write_text(legend + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
