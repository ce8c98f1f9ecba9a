#!/usr/bin/env python
"""Table 1 of the BIKAnet paper on our data, following ``shared/PROTOCOL.md`` exactly.

Rows: image sets (bsds500_val, set14, mcmaster18 or any folder) × tracks (quick / full / random); columns: the
blurred input, Wiener deconvolution with the true kernel (skimage, ``balance`` tuned on bsds500_val quick unless
given), BIKAnet's own Wiener front-end alone, and each BIKAnet variant with the true kernel (non-blind). With
``--estimator``, each variant also runs blind (``NAME+blind``: the kernel estimated from the blurred image, as
``bikanet_hf.deblur`` does), and the estimator's kernel error Σ|k̂ − k| is reported. ``--polyblur`` adds the blind
peer Polyblur (Delbracio et al. 2021, the ``polyblur`` package; ``pip install --no-build-isolation polyblur``).
PSNR / SSIM on 8-bit images, means over pairs, gain over the blurred input. Writes JSON and a markdown table.

Example:

    python train/evaluate.py --model bikanet=bikanet_hf/checkpoints/bikanet \\
        --model no-ka-ae=runs/ablation-no-ka --sets bsds500_val set14 --tracks quick random \\
        --estimator bikanet_hf/checkpoints/bikanet/kernel_estimator --out benchmarks/results/table1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from skimage.restoration import wiener

from bikanet_hf import corpus
from bikanet_hf.deblurring import restore
from bikanet_hf.image_io import to_tensor
from bikanet_hf.image_processing_bikanet import BikanetImageProcessor
from bikanet_hf.metrics import kernel_l1, psnr, ssim
from bikanet_hf.modeling_bikanet import BikanetForImageDeblurring, wiener_deconvolution
from bikanet_hf.modeling_kernel_estimator import BikanetKernelEstimator
from bikanet_hf.protocol import TRACKS, protocol_pairs

WIENER_BALANCE_GRID = (2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)


def wiener_deblur(blurred: np.ndarray, kernel: np.ndarray, balance: float) -> np.ndarray:
    """skimage's Wiener deconvolution per channel, quantised to 8 bits.

    The image is reflect-padded to its whole mirror extension ((2H−2)×(2W−2)), which is periodic, so the FFT's
    wrap-around sees no seam (+0.19 dB over a 34-pixel margin on 16 quick pairs at balance 1e-3). skimage
    regularises with the Laplacian, so this is not the constant-balance filter of BIKAnet's front-end, which
    :func:`frontend_wiener_deblur` reproduces.
    """
    h, w = blurred.shape[:2]
    x = np.pad(blurred.astype(np.float64) / 255.0, ((0, h - 2), (0, w - 2), (0, 0)), mode="reflect")
    out = np.stack([wiener(x[..., c], kernel, balance, clip=False) for c in range(3)], axis=-1)[:h, :w]
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


@torch.no_grad()
def frontend_wiener_deblur(blurred: np.ndarray, kernel: np.ndarray, balance: float = 5e-4) -> np.ndarray:
    """BIKAnet's own Wiener front-end (constant balance, whole-image mirror extension) on its own: what an
    untrained model returns, so the gap to it is what the network adds."""
    x = torch.from_numpy(BikanetImageProcessor().to_array(blurred)).permute(2, 0, 1)[None]  # as the model is fed
    y = wiener_deconvolution(x, torch.from_numpy(kernel)[None].float(), [balance])
    return np.asarray(BikanetImageProcessor().postprocess(y)[0])  # quantised as the model's output is


# Polyblur's settings from its IPOL demo (three iterations, halo removal, edge tapering): +0.77 dB on the first 16
# quick pairs of bsds500_val against +0.38 dB for the package defaults (measured 2026-11-25).
POLYBLUR_SETTINGS = {"n_iter": 3, "alpha": 6, "beta": 1, "remove_halo": True, "edgetaping": True}


def polyblur_deblur(blurred: np.ndarray) -> np.ndarray:
    """Blind deblurring by Polyblur (its own Gaussian blur estimate, then polynomial inverse filtering)."""
    import polyblur

    out = polyblur.polyblur_deblurring(blurred.astype(np.float32) / 255.0, **POLYBLUR_SETTINGS)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def polyblur_kernel(blurred: np.ndarray) -> np.ndarray:
    """Polyblur's Gaussian blur estimate of an 8-bit RGB image, as a 17×17 kernel summing to 1."""
    from polyblur.blur_estimation import gaussian_blur_estimation

    x = to_tensor(blurred)[None]
    kernel = gaussian_blur_estimation(x, ker_size=17)[0, 0].double().numpy()
    return kernel / kernel.sum()


def tune_wiener_balance(pairs: list, grid=WIENER_BALANCE_GRID) -> tuple[float, dict]:
    """The balance with the best mean PSNR on ``pairs`` (and the whole sweep)."""
    sweep = {b: float(np.mean([psnr(p.sharp, wiener_deblur(p.blurred, p.kernel, b)) for p in pairs])) for b in grid}
    return max(sweep, key=sweep.get), sweep


@torch.no_grad()
def model_deblur(
    model: BikanetForImageDeblurring, blurred: np.ndarray, kernel: np.ndarray, estimated: bool = False, **options
) -> np.ndarray:
    """The model's uint8 result for a uint8 image, in one pass (no tiles): what the protocol scores."""
    return restore(model, blurred, kernel, tile_size=None, kernel_is_estimate=estimated, **options)[0]


# Column suffixes of each model: its single pass, and with --self_ensemble its 8-way flip-and-turn average.
ENSEMBLE_VARIANTS = (("", False), ("+ensemble", True))


def score(rows: list[tuple[float, float]], base: list[tuple[float, float]]) -> dict:
    p, s = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
    bp = np.mean([b[0] for b in base])
    return {"psnr": float(p), "ssim": float(s), "delta_psnr": float(p - bp), "num_pairs": len(rows)}


def evaluate(
    models: dict,
    sets: dict,
    tracks: list[str],
    wiener_balance: float | None,
    limit: int | None,
    seed: int,
    noise: bool,
    estimator: BikanetKernelEstimator | None = None,
    polyblur: bool = False,
    self_ensemble: bool = False,
) -> dict:
    results: dict = {}
    for set_name, folder in sets.items():
        for track in tracks:
            pairs = list(protocol_pairs(folder, track=track, seed=seed, noise=noise, limit=limit))
            per_method: dict[str, list] = {"blurred": []}
            kernel_errors, estimate_seconds = [], []
            for pair in pairs:
                if estimator is not None:
                    start = time.perf_counter()
                    moments = estimator.pooled_moments(to_tensor(pair.blurred))
                    with torch.no_grad():
                        estimate = estimator.from_moments(moments, return_dict=True).kernel[0].double().numpy()
                        estimate_seconds.append(time.perf_counter() - start)
                        kernel_errors.append(kernel_l1(estimate, pair.kernel))
                        # deblurring uses the narrowed kernel, as bikanet_hf.deblur does
                        used = estimator.from_moments(moments, for_deblurring=True, return_dict=True)
                    estimate = used.kernel[0].double().numpy()
                per_method["blurred"].append((psnr(pair.sharp, pair.blurred), ssim(pair.sharp, pair.blurred)))
                if wiener_balance is not None:
                    out = wiener_deblur(pair.blurred, pair.kernel, wiener_balance)
                    per_method.setdefault("wiener", []).append((psnr(pair.sharp, out), ssim(pair.sharp, out)))
                    out = frontend_wiener_deblur(pair.blurred, pair.kernel)
                    per_method.setdefault("wiener-frontend", []).append((psnr(pair.sharp, out), ssim(pair.sharp, out)))
                if polyblur:
                    out = polyblur_deblur(pair.blurred)
                    per_method.setdefault("polyblur", []).append((psnr(pair.sharp, out), ssim(pair.sharp, out)))
                for name, model in models.items():
                    for suffix, ensemble in ENSEMBLE_VARIANTS[: 1 + self_ensemble]:
                        out = model_deblur(model, pair.blurred, pair.kernel, self_ensemble=ensemble)
                        per_method.setdefault(name + suffix, []).append((psnr(pair.sharp, out), ssim(pair.sharp, out)))
                        if estimator is not None:
                            used = estimate / estimate.sum()
                            out = model_deblur(model, pair.blurred, used, estimated=True, self_ensemble=ensemble)
                            per_method.setdefault(f"{name}+blind{suffix}", []).append(
                                (psnr(pair.sharp, out), ssim(pair.sharp, out))
                            )
            results.setdefault(set_name, {})[track] = {
                m: score(rows, per_method["blurred"]) for m, rows in per_method.items()
            }
            if estimator is not None:
                results[set_name][track]["kernel_estimate"] = {
                    "kernel_l1": float(np.mean(kernel_errors)),
                    "median_seconds": float(np.median(estimate_seconds)),
                    "num_pairs": len(pairs),
                }
            print(
                f"{set_name}/{track}: "
                + ", ".join(f"{m} {v['psnr']:.2f}" for m, v in results[set_name][track].items() if "psnr" in v)
                + (f", kernel L1 {np.mean(kernel_errors):.3f}" if kernel_errors else ""),
                flush=True,
            )
    return results


def format_cell(method: str, scores: dict | None) -> str:
    """A table cell: PSNR / SSIM, and the gain over the blurred input for every column but ``blurred``."""
    if scores is None:
        return "–"
    cell = f"{scores['psnr']:.2f} / {scores['ssim']:.4f}"
    return cell if method == "blurred" else f"{cell} ({scores['delta_psnr']:+.2f})"


def markdown_table(results: dict, methods: list[str], kernel_column: bool = False) -> str:
    columns = methods + (["kernel L1 (estimate)"] if kernel_column else [])
    head = "| set | track | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    for set_name, tracks in results.items():
        for track, cols in tracks.items():
            cells = [format_cell(m, cols.get(m)) for m in methods]
            estimate = cols.get("kernel_estimate")
            if estimate is not None:
                cells.append(f"{estimate['kernel_l1']:.3f}")
            lines.append(f"| {set_name} | {track} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _polyblur_version() -> str:
    from importlib.metadata import version

    return version("polyblur")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="A BIKAnet variant to evaluate (pretrained folder); repeat for several.",
    )
    p.add_argument(
        "--sets",
        nargs="+",
        default=["bsds500_val"],
        help="Image sets: names of folders in the data dir (bsds500_val, set14, mcmaster18) or paths.",
    )
    p.add_argument(
        "--estimator",
        default=None,
        help="Kernel estimator folder: also run every model blind (NAME+blind) with its estimates.",
    )
    p.add_argument("--polyblur", action="store_true", help="Add the blind peer Polyblur (needs the package).")
    p.add_argument(
        "--self_ensemble",
        action="store_true",
        help="Also run every model (and NAME+blind) averaged over 8 flips and turns (NAME+ensemble; 8× the time).",
    )
    p.add_argument("--tracks", nargs="+", default=["quick"], choices=TRACKS, help="Protocol tracks.")
    p.add_argument("--limit", type=int, default=None, help="Use only the first N images of each set.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the random track (image i: seed + i).")
    p.add_argument("--noise", action="store_true", help="The protocol's noise track (σ = 2.55).")
    p.add_argument(
        "--wiener_balance",
        type=float,
        default=None,
        help="Wiener balance; default: tuned on bsds500_val quick (first --tune_limit images).",
    )
    p.add_argument("--tune_limit", type=int, default=None, help="Images of bsds500_val used to tune Wiener.")
    p.add_argument("--no_wiener", action="store_true", help="Leave the Wiener baseline out.")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2).")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu).")
    p.add_argument("--out", default=None, help="Output path prefix: writes PREFIX.json and PREFIX.md.")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    # The shared data folder is looked up only for what needs it (set names, Wiener tuning): folders given as paths
    # evaluate anywhere, e.g. on a machine with only those folders.
    sets = {Path(s).name: (Path(s) if Path(s).is_dir() else corpus.default_data_dir() / s) for s in args.sets}
    device = torch.device(args.device)
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--model expects NAME=PATH, got {spec!r}")
        models[name] = BikanetForImageDeblurring.from_pretrained(path).to(device).eval()
    estimator = BikanetKernelEstimator.from_pretrained(args.estimator).eval() if args.estimator else None
    start = time.time()
    balance, sweep = args.wiener_balance, None
    if balance is None and not args.no_wiener:
        tune_pairs = list(
            protocol_pairs(corpus.default_data_dir() / "bsds500_val", "quick", limit=args.tune_limit, noise=args.noise)
        )
        balance, sweep = tune_wiener_balance(tune_pairs)
        print(f"Wiener balance tuned on bsds500_val quick: {balance:g} ({sweep})", flush=True)
    results = evaluate(
        models,
        sets,
        args.tracks,
        None if args.no_wiener else balance,
        args.limit,
        args.seed,
        args.noise,
        estimator,
        args.polyblur,
        args.self_ensemble,
    )
    suffixes = [suffix for suffix, _ in ENSEMBLE_VARIANTS[: 1 + args.self_ensemble]]
    blind = [f"{name}+blind{suffix}" for name in models for suffix in suffixes] if estimator is not None else []
    ensembles = [f"{name}{suffix}" for name in models for suffix in suffixes[1:]]
    peers = (["wiener", "wiener-frontend"] if not args.no_wiener else []) + (["polyblur"] if args.polyblur else [])
    methods = ["blurred", *peers, *models, *ensembles, *blind]
    report = {
        "protocol": "shared/PROTOCOL.md; PSNR/SSIM on 8-bit RGB, full frame; non-blind (true kernel) unless "
        "the method ends in +blind (kernel estimated by the estimator)",
        "estimator": args.estimator,
        "polyblur": {"version": _polyblur_version(), "settings": POLYBLUR_SETTINGS} if args.polyblur else None,
        "results": results,
        "wiener": {"balance": balance, "tuning_sweep": sweep, "tuned_on": "bsds500_val quick"},
        "models": {name: spec.partition("=")[2] for name, spec in zip(models, args.model, strict=True)},
        "settings": {"limit": args.limit, "seed": args.seed, "noise": args.noise, "tracks": args.tracks},
        "machine": {
            "device": args.device,
            "threads": args.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "seconds": time.time() - start,
    }
    table = markdown_table(results, methods, kernel_column=estimator is not None)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2))
        legend = (
            "PSNR (dB) / SSIM (gain over the blurred input, dB). Every method gets the true kernel except NAME+blind, "
            "which deblurs with the kernel the estimator finds in the blurred image (kernel L1: its mean error "
            "Σ|k̂ − k|, 0 = exact, 2 = disjoint), and polyblur, which is blind (its own estimate). "
            + (
                ""
                if args.no_wiener
                else f"wiener: skimage (Laplacian-regularised), balance {balance:g} tuned on bsds500_val quick; "
                "wiener-frontend: BIKAnet's constant-balance Wiener front-end (5e-4) alone. "
            )
            + "NAME+ensemble: the model's results for the image and kernel flipped and turned 8 ways, averaged.\n\n"
        )
        out.with_suffix(".md").write_text(legend + table + "\n")
    return report


if __name__ == "__main__":
    main()
