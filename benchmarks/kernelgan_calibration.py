"""Calibration and accuracy of the internal-GAN kernel estimator (KernelGAN, Bell-Kligler et al., NeurIPS 2019).

1. Calibration: the GAN is trained on the first ``--calibration`` images of bsds500_train's random track (training
   images, as the amortized estimator's); the map ``Σ_blur = a·Σ_generator + c·I`` is fitted by grid search on their
   mean kernel error ``Σ|k̂ − k|``.
2. Evaluation, on the first ``--evaluation`` images of bsds500_val (which nothing is fitted on), quick and random
   tracks:
   mean kernel error with the fitted map, next to the uncalibrated scale-invariant map (a = 1/3, c = 0) and the
   fixed "average kernel" guess (the mean of bank16), and seconds per image at the default step count.
3. Refine: on the evaluation images of the random track, the GAN starts from the true kernel widened by 1.3
   (``init_kernel``); its error is compared with that starting kernel's (the GAN's own answer, w = 0).
4. Refine weight: on the first ``--refine_images`` images of mcmaster18's random track (no estimator trains or is
   calibrated on mcmaster18), the GAN starts from the bundled amortized estimate; ``refine_prior_weight`` w of
   ``(w·Σ_start + Σ_gan) / (1 + w)`` is fitted by grid search on the mean kernel error.

Usage: ``python benchmarks/kernelgan_calibration.py``; writes ``benchmarks/results/kernelgan.{json,md}``.
The fitted constants (a, c) are to be copied into ``KernelGANConfig``'s defaults by hand. The refine weight w of
step 4 (12 images, w up to 64) is superseded by ``benchmarks/kernelgan_refine.py`` (94 pairs, w up to 1024), which
chose the default.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.configuration_kernelgan import KernelGANConfig
from bikanet_hf.estimation import estimate_kernel
from bikanet_hf.image_io import to_tensor
from bikanet_hf.kernels import bank16, gaussian_kernel
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.modeling_kernel_estimator import gaussian_kernels
from bikanet_hf.modeling_kernelgan import KernelGAN, gaussian_covariance
from bikanet_hf.protocol import protocol_pairs


def as_image(blurred: np.ndarray) -> torch.Tensor:
    return to_tensor(blurred)


def mapped_l1(model: KernelGAN, covariances: list[torch.Tensor], truths: list[np.ndarray]) -> float:
    return float(
        np.mean([kernel_l1(model.image_kernel(c).numpy(), t) for c, t in zip(covariances, truths, strict=True)])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=16, help="bsds500_train images to fit the map on (first N)")
    parser.add_argument("--evaluation", type=int, default=12, help="bsds500_val images per track to evaluate on")
    parser.add_argument("--refine_images", type=int, default=12, help="mcmaster18 images to fit the refine weight on")
    parser.add_argument("--steps", type=int, default=None, help="GAN steps per image (default: the config's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--out", default="benchmarks/results/kernelgan", help="output path prefix")
    args = parser.parse_args()
    if args.calibration < 2 or args.evaluation < 1:
        parser.error("need at least 2 calibration images and 1 evaluation image")
    torch.set_num_threads(args.threads)
    data = corpus.default_data_dir()
    folder = data / "bsds500_val"
    model = KernelGAN(KernelGANConfig())
    steps = model.config.steps if args.steps is None else args.steps

    # 1. Calibration. The default run does not depend on the map (the generator starts from a fixed kernel).
    cal_covariances, cal_truths = [], []
    for pair in protocol_pairs(data / "bsds500_train", "random", limit=args.calibration):
        cal_covariances.append(model.generator_covariance(as_image(pair.blurred), steps=steps))
        cal_truths.append(pair.kernel)
        print("calibration", pair.name, cal_covariances[-1].diagonal().tolist(), flush=True)
    best = (np.inf, 0.0, 0.0)
    for a in np.arange(0.02, 1.0001, 0.02):
        for c in np.arange(-30.0, 5.0001, 0.25):
            model.config.calibration_scale, model.config.calibration_offset = float(a), float(c)
            best = min(best, (mapped_l1(model, cal_covariances, cal_truths), round(float(a), 4), round(float(c), 4)))
    cal_l1, scale, offset = best
    print(f"fitted a={scale} c={offset} (calibration L1 {cal_l1:.3f})", flush=True)

    # 2. Evaluation on the next images, with the fitted map and with the scale-invariant one.
    average = bank16().mean(axis=0)
    rows = {}
    eval_pairs = {}
    for track in ("quick", "random"):
        covariances, truths, seconds, constant = [], [], [], []
        for pair in protocol_pairs(folder, track, limit=args.evaluation):
            start = time.perf_counter()
            covariances.append(model.generator_covariance(as_image(pair.blurred), steps=steps))
            seconds.append(time.perf_counter() - start)  # the map and the rendering take microseconds
            truths.append(pair.kernel)
            constant.append(kernel_l1(average, pair.kernel))
            eval_pairs.setdefault(track, []).append(pair)
        model.config.calibration_scale, model.config.calibration_offset = scale, offset
        calibrated = mapped_l1(model, covariances, truths)
        model.config.calibration_scale, model.config.calibration_offset = 1 / 3, 0.0
        scale_invariant = mapped_l1(model, covariances, truths)
        rows[track] = {
            "kernelgan": calibrated,
            "kernelgan_scale_invariant_map": scale_invariant,
            "average_kernel": float(np.mean(constant)),
            "seconds_per_image": float(np.mean(seconds)),
            "num_pairs": len(truths),
        }
        print(track, rows[track], flush=True)

    # 3. Refine from the true kernel widened by 1.3.
    model.config.calibration_scale, model.config.calibration_offset = scale, offset
    init_l1, refined_l1 = [], []
    model.config.refine_prior_weight = 0.0
    for pair in eval_pairs["random"]:
        init = gaussian_kernel(1.3 * pair.sigma_major, 1.3 * pair.sigma_minor, pair.theta)
        refined = model.estimate(as_image(pair.blurred), steps=steps, init_kernel=init)
        init_l1.append(kernel_l1(init, pair.kernel))
        refined_l1.append(kernel_l1(refined.numpy(), pair.kernel))
    refine = {"init_l1": float(np.mean(init_l1)), "refined_l1": float(np.mean(refined_l1)), "num_pairs": len(init_l1)}
    print("refine", refine, flush=True)

    # 4. The refine weight, from the amortized estimate on mcmaster18 (its own images: no estimator saw them).
    starts, gans, truths, amortized_l1 = [], [], [], []
    for pair in protocol_pairs(data / "mcmaster18", "random", limit=args.refine_images):
        start = estimate_kernel(pair.blurred)
        generator = model.generator_covariance(as_image(pair.blurred), steps=steps, init_kernel=start)
        starts.append(gaussian_covariance(torch.from_numpy(start)))
        gans.append(model.image_covariance(generator))
        truths.append(pair.kernel)
        amortized_l1.append(kernel_l1(start, pair.kernel))
        print("refine weight", pair.name, flush=True)

    def fused_l1(weight: float) -> float:
        model.config.refine_prior_weight = weight
        fused = [model.refined_covariance(s, g) for s, g in zip(starts, gans, strict=True)]
        kernels = gaussian_kernels(torch.stack(fused), model.config.kernel_size).numpy()
        return float(np.mean([kernel_l1(k, t) for k, t in zip(kernels, truths, strict=True)]))

    weights = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    by_weight = {w: fused_l1(w) for w in weights}
    start_l1 = float(np.mean(amortized_l1))
    refine_weight = {
        "images": f"first {args.refine_images} of mcmaster18, random track",
        "amortized_l1": start_l1,
        "l1_by_weight": by_weight,
        "fitted_weight": min(by_weight, key=by_weight.get),
    }
    print("refine weight", refine_weight, flush=True)

    report = {
        "what": "KernelGAN kernel error sum|k_hat - k| on bsds500_val; calibration and evaluation on disjoint images",
        "calibration": {
            "track": "random",
            "images": f"first {args.calibration} of bsds500_train",
            "calibration_scale": scale,
            "calibration_offset": offset,
            "calibration_l1": cal_l1,
            "generator_covariances": [c.tolist() for c in cal_covariances],
        },
        "evaluation_images": f"first {args.evaluation} of bsds500_val (sorted by name)",
        "kernel_l1": rows,
        "refine_random_track_from_true_kernel_times_1.3": refine,
        "refine_weight": refine_weight,
        "steps": steps,
        **machine(args.threads),
    }
    lines = [
        f"KernelGAN ({steps} steps, {args.threads} CPU thread). Map Σ_b = a·Σ_g + c·I fitted on the random track of "
        f"bsds500_train's first {args.calibration} images: a = {scale}, c = {offset} (their L1: {cal_l1:.3f}); "
        f"evaluated on bsds500_val's first {args.evaluation} images.\n",
        "| track | pairs | KernelGAN (fitted map) | KernelGAN (a = 1/3, c = 0) | fixed average kernel | s / image |",
        "|---|---|---|---|---|---|",
        *(
            f"| {t} | {r['num_pairs']} | {r['kernelgan']:.3f} | {r['kernelgan_scale_invariant_map']:.3f} | "
            f"{r['average_kernel']:.3f} | {r['seconds_per_image']:.1f} |"
            for t, r in rows.items()
        ),
        "",
        f"Refine (random track, {refine['num_pairs']} pairs, started from the true kernel widened ×1.3): "
        f"L1 {refine['init_l1']:.3f} at the start → {refine['refined_l1']:.3f} after {steps} steps (the GAN's own "
        "answer, w = 0).",
        "",
        f"Refine weight w (the GAN started from the amortized estimate; {refine_weight['images']}; amortized L1 "
        f"{start_l1:.3f}): fitted w = {refine_weight['fitted_weight']}.\n",
        "| w | " + " | ".join(f"{w:g}" for w in weights) + " |",
        "|---" * (len(weights) + 1) + "|",
        "| L1 | " + " | ".join(f"{by_weight[w]:.3f}" for w in weights) + " |",
    ]
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
