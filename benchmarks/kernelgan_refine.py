"""What KernelGAN adds to the amortized estimate: ``refine`` measured on images no estimator saw.

``refine`` starts the GAN from the amortized estimate and answers ``(w·Σ_start + Σ_GAN) / (1 + w)``
(``KernelGANConfig.refine_prior_weight``). It can beat the amortized estimate only if the GAN's answer carries
information the amortized one lacks. This benchmark measures that on every image of mcmaster18, set14, set5 and
wikiphotos10 (no estimator is trained or calibrated on them), quick and random tracks:

- the kernel error ``Σ|k̂ − k|`` of the amortized estimate and of ``refine`` for a range of w (w = 0: the GAN's own
  answer from the amortized start; w → ∞: the amortized answer);
- the correlation between the amortized estimate's error and the GAN's disagreement with it, for the blur's size
  (trace of the covariance) and its shape (the anisotropic part): near zero means the GAN says nothing about where the
  amortized estimate is wrong, so no weighting of the two can beat the amortized estimate.

Usage: ``python benchmarks/kernelgan_refine.py [--workers 2]``, about 20 minutes on 2 cores; writes
``benchmarks/results/kernelgan_refine.{json,md}``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np
import torch
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.configuration_kernelgan import KernelGANConfig
from bikanet_hf.estimation import estimate_kernel
from bikanet_hf.image_io import to_tensor
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.modeling_kernel_estimator import gaussian_kernels
from bikanet_hf.modeling_kernelgan import KernelGAN, gaussian_covariance
from bikanet_hf.protocol import protocol_pairs

WEIGHTS = (0.0, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0)


def measure(job: tuple[str, str, str, np.ndarray, np.ndarray]) -> dict:
    """One pair: the amortized estimate, and the GAN's image-blur covariance when started from it."""
    torch.set_num_threads(1)
    name, track, image_set, blurred, kernel = job
    start = time.perf_counter()
    amortized = estimate_kernel(blurred)
    model = KernelGAN(KernelGANConfig())
    image = to_tensor(blurred)
    gan = model.image_covariance(model.generator_covariance(image, init_kernel=amortized))
    return {
        "set": image_set,
        "track": track,
        "name": name,
        "true": gaussian_covariance(torch.from_numpy(kernel)).tolist(),
        "amortized": gaussian_covariance(torch.from_numpy(amortized)).tolist(),
        "gan": gan.tolist(),
        "amortized_l1": kernel_l1(amortized, kernel),
        "seconds": time.perf_counter() - start,
        "kernel": kernel,
    }


def size_and_shape(covariance: np.ndarray) -> tuple[float, np.ndarray]:
    """The trace (the blur's size, px²) and the anisotropic part's two free entries (its shape)."""
    trace = float(np.trace(covariance))
    deviation = covariance - trace / 2 * np.eye(2)
    return trace, deviation[0]


def summarise(records: list[dict]) -> dict:
    model = KernelGAN(KernelGANConfig())
    starts = torch.tensor([r["amortized"] for r in records], dtype=torch.float64)
    gans = torch.tensor([r["gan"] for r in records], dtype=torch.float64)
    by_weight = {}
    for weight in WEIGHTS:
        model.config.refine_prior_weight = weight
        fused = torch.stack([model.refined_covariance(s, g) for s, g in zip(starts, gans, strict=True)])
        kernels = gaussian_kernels(fused, model.config.kernel_size).numpy()
        by_weight[weight] = float(np.mean([kernel_l1(k, r["kernel"]) for k, r in zip(kernels, records, strict=True)]))
    errors, disagreements = [], []
    for r in records:
        true, amortized, gan = (size_and_shape(np.array(r[key])) for key in ("true", "amortized", "gan"))
        errors.append(np.r_[true[0] - amortized[0], true[1] - amortized[1]])
        disagreements.append(np.r_[gan[0] - amortized[0], gan[1] - amortized[1]])
    errors, disagreements = np.array(errors), np.array(disagreements)
    return {
        "num_pairs": len(records),
        "amortized_l1": float(np.mean([r["amortized_l1"] for r in records])),
        "refine_l1_by_weight": by_weight,
        "size_correlation": float(np.corrcoef(errors[:, 0], disagreements[:, 0])[0, 1]),
        "shape_correlation": float(np.corrcoef(errors[:, 1:].ravel(), disagreements[:, 1:].ravel())[0, 1]),
        "amortized_size_error_std": float(errors[:, 0].std()),
        "gan_size_disagreement_std": float(disagreements[:, 0].std()),
        "amortized_shape_error_std": float(errors[:, 1:].std()),
        "gan_shape_disagreement_std": float(disagreements[:, 1:].std()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sets", nargs="+", default=["mcmaster18", "set14", "set5", "wikiphotos10"], help="image sets"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="processes, one CPU thread each (default: 2)")
    parser.add_argument("--out", default="benchmarks/results/kernelgan_refine", help="output path prefix")
    args = parser.parse_args()
    data = corpus.default_data_dir()
    jobs = [
        (pair.name, track, image_set, pair.blurred, pair.kernel)
        for image_set in args.sets
        for track in ("quick", "random")
        for pair in protocol_pairs(data / image_set, track, limit=args.limit)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        records = []
        for record in pool.imap(measure, jobs):
            records.append(record)
            print(f"{len(records)}/{len(jobs)} {record['set']} {record['track']} {record['name']}", flush=True)
    rows = {track: summarise([r for r in records if r["track"] == track]) for track in ("quick", "random")}
    rows["both"] = summarise(records)
    steps = KernelGANConfig().steps
    report = {
        "what": "KernelGAN refine (started from the amortized estimate) against the amortized estimate, kernel error "
        "sum|k_hat - k|, on images no estimator is trained or calibrated on",
        "sets": args.sets,
        "steps": steps,
        "by_track": rows,
        "pairs": [{k: v for k, v in r.items() if k != "kernel"} for r in records],
        "median_seconds_per_image": float(np.median([r["seconds"] for r in records])),
        **machine(1),
        "workers": args.workers,
    }
    lines = [
        f"KernelGAN `refine` against the amortized estimate on {', '.join(args.sets)} (all images, quick and random "
        f"tracks; no estimator is trained or calibrated on them), {steps} GAN steps, {args.workers} processes of 1 "
        "CPU thread. Kernel error Σ|k̂ − k| of `refine` = (w·Σ_amortized + Σ_GAN) / (1 + w) for each w:\n",
        "| track | pairs | amortized | " + " | ".join(f"w = {w:g}" for w in WEIGHTS) + " |",
        "|---" * (len(WEIGHTS) + 3) + "|",
        *(
            f"| {t} | {r['num_pairs']} | {r['amortized_l1']:.4f} | "
            + " | ".join(f"{r['refine_l1_by_weight'][w]:.4f}" for w in WEIGHTS)
            + " |"
            for t, r in rows.items()
        ),
        "",
        "Does the GAN know where the amortized estimate is wrong? Correlation between the amortized estimate's error "
        "(true − amortized) and the GAN's disagreement with it (GAN − amortized), for the blur's size (trace of the "
        "covariance, px²) and its shape (the anisotropic part's entries), with the standard deviation of each:\n",
        "| track | size: correlation | size: amortized error std | size: GAN disagreement std | shape: correlation | "
        "shape: amortized error std | shape: GAN disagreement std |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {t} | {r['size_correlation']:.3f} | {r['amortized_size_error_std']:.2f} | "
            f"{r['gan_size_disagreement_std']:.2f} | {r['shape_correlation']:.3f} | "
            f"{r['amortized_shape_error_std']:.2f} | {r['gan_shape_disagreement_std']:.2f} |"
            for t, r in rows.items()
        ),
        "",
        f"Median time per image (amortized estimate + GAN): {report['median_seconds_per_image']:.1f} s.",
    ]
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
