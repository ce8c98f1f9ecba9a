"""The motion-blur extension's benchmark: camera-shake blur, synthetic (Levin kernels) and real (GoPro pairs).

Rows:

* ``bsds500_val/motion`` — the protocol's motion track: the first ``--limit`` images of bsds500_val, image i blurred
  with Levin et al.'s kernel i mod 8 (31×31 frame), 8-bit;
* ``gopro`` — the two real blurred/sharp pairs of ``gopro_examples`` (non-uniform blur, no true kernel: blind
  methods only).

Columns: the blurred input; with the true kernel, Wiener and Richardson–Lucy (skimage; balance and iterations tuned
on the first ``--tune_limit`` motion pairs), the Gaussian BIKAnet (the kernel cropped to its 17×17 frame, as
``deblur`` does) and the motion model (per-pixel motion flow, 31×31 kernels), also with a zero flow (what the flow
input adds); blind, Polyblur, the Gaussian BIKAnet
with its amortized estimate (``deblur(image)``) and the motion model with the straight motion of the motion
estimator's covariance (``deblur(image, blur_type="motion", method="amortized")``) and with the path traced by edge
prediction (``deblur(image, blur_type="motion")``, the default). Blind results may be shifted by a few pixels (a
blurred image does not say where its kernel sits; the Levin kernels' centres of mass are up to 4 px off their
frame's centre), so a second table gives every column's shift-aligned PSNR (``metrics.aligned_psnr``: best integer
shift up to 6 px, 6-px border left out), the usual score for blind camera-shake deblurring. Also the spread error
of each estimator on the motion track: ``Σ|g(Σ̂) − g(Σ)|`` between the Gaussians of the estimated and the true
kernel's covariance (0 = the same length and direction).

``--compare FOLDER [FOLDER ...]`` adds other motion models (e.g. the previous checkpoint, experiments) with the true
kernel and with the edge path, as columns named after their folders.

Usage: ``python benchmarks/motion.py [--motion_model FOLDER] [--compare FOLDER ...] [--limit 32]``
Writes ``benchmarks/results/motion.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.deblurring import deblur, load_model
from bikanet_hf.estimation import load_estimator
from bikanet_hf.image_io import load_rgb, to_tensor
from bikanet_hf.metrics import aligned_psnr, psnr, ssim
from bikanet_hf.modeling_kernel_estimator import kernel_covariance, spread_error
from bikanet_hf.pipeline_bikanet import kernel_for_model
from bikanet_hf.protocol import protocol_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import model_deblur, polyblur_deblur, tune_wiener_balance, wiener_deblur  # noqa: E402
from quality import markdown, richardson_lucy_deblur, tune_richardson_lucy  # noqa: E402
from timing import machine, write_results  # noqa: E402

# Training validates (and picks its checkpoint) on the first 16 motion pairs (train_bikanet.py's --validation_limit).
VALIDATION_PAIRS = 16
NON_BLIND = ("wiener", "richardson-lucy", "bikanet", "bikanet-motion", "bikanet-motion, no flow")
BLIND = ("polyblur", "bikanet+blind", "bikanet-motion+straight", "bikanet-motion+edges")


def scores(rows: dict[str, list[tuple[float, float, float]]]) -> dict:
    """Mean PSNR, SSIM and shift-aligned PSNR of each column, and their gains over the blurred input."""
    base, aligned_base = (float(np.mean([r[i] for r in rows["blurred"]])) for i in (0, 2))
    out = {}
    for name, values in rows.items():
        p, s, a = (float(np.mean([v[i] for v in values])) for i in range(3))
        out[name] = {
            "psnr": p,
            "ssim": s,
            "delta_psnr": p - base,
            "aligned_psnr": a,
            "delta_aligned_psnr": a - aligned_base,
            "num_pairs": len(values),
        }
    return out


def measure(sharp: np.ndarray, out: np.ndarray) -> tuple[float, float, float]:
    return psnr(sharp, out), ssim(sharp, out), aligned_psnr(sharp, out)


def gopro_rows(data: Path, methods) -> dict[str, list[tuple[float, float, float]]]:
    """The real GoPro pairs of ``data/gopro_examples`` measured blurred and restored by each blind method:
    ``methods(blurred)`` gives ``{name: restored}``."""
    rows: dict[str, list] = {"blurred": []}
    for blurred_path in sorted((data / "gopro_examples").glob("*_blur*.png")):
        sharp = load_rgb(blurred_path.with_name(blurred_path.name.replace("_blur", "_sharp")))
        blurred = load_rgb(blurred_path)
        rows["blurred"].append(measure(sharp, blurred))
        for name, out in methods(blurred).items():
            rows.setdefault(name, []).append(measure(sharp, out))
        print(blurred_path.name, flush=True)
    return rows


def without_flow(model, blurred: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The motion model with the true kernel but a zero motion flow: what the flow input adds (an ablation)."""
    return model_deblur(model, blurred, kernel, motion_flow=torch.zeros(1, 2, *blurred.shape[:2]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--motion_model", default=None, help="motion BIKAnet folder (default: the bundled one)")
    p.add_argument("--compare", nargs="+", default=[], help="other motion model folders, each in its own columns")
    p.add_argument("--limit", type=int, default=32, help="bsds500_val images on the motion track (default: 32)")
    p.add_argument("--tune_limit", type=int, default=8, help="motion pairs Wiener and R–L are tuned on (default: 8)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--out", default="benchmarks/results/motion", help="output path prefix")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    data = corpus.default_data_dir()
    gaussian, motion = load_model(), load_model(args.motion_model, blur_type="motion")
    others = {Path(folder).name: load_model(folder, blur_type="motion") for folder in args.compare}
    non_blind = (*NON_BLIND, *others)
    blind_columns = (*BLIND, *(f"{name}+edges" for name in others))
    estimators = {"gaussian estimator": load_estimator(), "motion estimator": load_estimator(blur_type="motion")}
    pairs = list(protocol_pairs(data / "bsds500_val", "motion", limit=args.limit))
    balance, wiener_sweep = tune_wiener_balance(pairs[: args.tune_limit])
    iterations, rl_sweep = tune_richardson_lucy(pairs[: args.tune_limit])
    print(f"tuned on {args.tune_limit} motion pairs: Wiener balance {balance:g}, R–L {iterations} iterations")

    def blind(blurred: np.ndarray) -> dict[str, np.ndarray]:
        outputs = {
            "polyblur": polyblur_deblur(blurred),
            "bikanet+blind": np.asarray(deblur(blurred, model=gaussian).image),
            "bikanet-motion+straight": np.asarray(
                deblur(blurred, model=motion, blur_type="motion", method="amortized").image
            ),
            "bikanet-motion+edges": np.asarray(deblur(blurred, model=motion, blur_type="motion").image),
        }
        for name, other in others.items():
            outputs[f"{name}+edges"] = np.asarray(deblur(blurred, model=other, blur_type="motion").image)
        return outputs

    synthetic: dict[str, list] = {"blurred": []}
    spread: dict[str, list] = {name: [] for name in estimators}
    for i, pair in enumerate(pairs):
        true = kernel_covariance(torch.from_numpy(pair.kernel)[None].float())
        image = to_tensor(pair.blurred)
        for name, estimator in estimators.items():
            spread[name].append(float(spread_error(estimator.estimate(image).covariance, true, 31)[0]))
        outputs = {
            "wiener": wiener_deblur(pair.blurred, pair.kernel, balance),
            "richardson-lucy": richardson_lucy_deblur(pair.blurred, pair.kernel, iterations),
            "bikanet": model_deblur(gaussian, pair.blurred, kernel_for_model(pair.kernel, 17)),
            "bikanet-motion": model_deblur(motion, pair.blurred, pair.kernel),
            "bikanet-motion, no flow": without_flow(motion, pair.blurred, pair.kernel),
            **{name: model_deblur(other, pair.blurred, pair.kernel) for name, other in others.items()},
            **blind(pair.blurred),
        }
        synthetic["blurred"].append(measure(pair.sharp, pair.blurred))
        for name, out in outputs.items():
            synthetic.setdefault(name, []).append(measure(pair.sharp, out))
        print(f"{i + 1}/{len(pairs)} {pair.name} kernel {pair.kernel_id}", flush=True)

    real = gopro_rows(data, blind)

    results = {"bsds500_val/motion": scores(synthetic)}
    if len(pairs) > VALIDATION_PAIRS:  # the pairs no training run chose its checkpoint on
        unseen = {name: rows[VALIDATION_PAIRS:] for name, rows in synthetic.items()}
        results[f"bsds500_val/motion, pairs {VALIDATION_PAIRS + 1}–{len(pairs)}"] = scores(unseen)
    results["gopro/real"] = scores(real)
    spread_errors = {name: float(np.mean(errors)) for name, errors in spread.items()}
    report = {
        "protocol": "shared/PROTOCOL.md motion track (Levin kernels, 31×31 frame); PSNR/SSIM on 8-bit RGB, full frame",
        "results": results,
        "kernel_spread_error_bsds500_val_motion": spread_errors,
        "tuning": {
            "pairs": f"bsds500_val motion, first {args.tune_limit}",
            "wiener_balance": balance,
            "wiener_sweep": wiener_sweep,
            "richardson_lucy_iterations": iterations,
            "richardson_lucy_sweep": rl_sweep,
        },
        "models": {
            "bikanet": "bundled",
            "bikanet-motion": args.motion_model or "bundled",
            **{Path(folder).name: folder for folder in args.compare},
            "estimators": "bundled",
        },
        "machine": machine(args.threads),
        "seconds": time.time() - start,
    }
    legend = (
        "PSNR (dB) / SSIM (ΔPSNR over the blurred input). With the true kernel: `wiener` (balance "
        f"{balance:g}) and `richardson-lucy` ({iterations} iterations), both tuned on the first {args.tune_limit} "
        "motion pairs; `bikanet` (the Gaussian model, kernel cropped to 17×17); `bikanet-motion` (the motion-flow "
        "model) and `bikanet-motion, no flow` (the same with a zero motion flow: what the flow input adds). "
        "Blind: `polyblur`; `bikanet+blind` (amortized Gaussian estimate); `bikanet-motion+straight` (the "
        "straight motion of the motion estimator's covariance); `bikanet-motion+edges` (the path traced by edge "
        "prediction, the default for blind camera shake). `gopro/real`: two real GoPro pairs, blind only."
        + "".join(
            f" `{Path(f).name}`: the motion model in {f}, with the true kernel and the edge path."
            for f in args.compare
        )
    )
    table = markdown(results, [*non_blind, *blind_columns])
    columns = ["blurred", *non_blind, *blind_columns]
    aligned = ["| set | track | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 2)]
    for key, row in results.items():
        cells = [
            "–"
            if name not in row
            else f"{row[name]['aligned_psnr']:.2f}"
            + ("" if name == "blurred" else f" ({row[name]['delta_aligned_psnr']:+.2f})")
            for name in columns
        ]
        aligned.append(f"| {key.replace('/', ' | ')} | " + " | ".join(cells) + " |")
    aligned_legend = (
        "Shift-aligned PSNR (dB; gain over the equally aligned blurred input): the best integer shift of each "
        "result up to 6 px, 6-px border left out (`bikanet_hf.metrics.aligned_psnr`)."
    )
    spread_table = ["| estimator | spread error Σ\\|g(Σ̂) − g(Σ)\\| |", "|---|---|"]
    spread_table += [f"| {name} | {error:.3f} |" for name, error in spread_errors.items()]
    write_results(args.out, report, [legend, "", table, "", aligned_legend, "", *aligned, "",
                                     f"Spread error on {len(pairs)} motion pairs:", "", *spread_table])  # fmt: skip


if __name__ == "__main__":
    main()
