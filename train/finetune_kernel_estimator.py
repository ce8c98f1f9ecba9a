#!/usr/bin/env python
"""Fine-tune the amortized kernel estimator's head on whole blurred photos, as users' photos are estimated.

``train_kernel_estimator.py`` trains on single 128×128 crops; at use, :meth:`BikanetKernelEstimator.estimate` pools
the statistics of a photo's 8 most textured 256×256 crops. This script closes that gap:

1. each photo of ``--train_dirs`` is blurred whole (the protocol's blur) with ``--per_image`` fresh kernels (bank16
   with probability ``--bank16_fraction``, else the random Gaussian family; with probability
   ``--noise_probability`` also Gaussian noise of σ ~ U[0, 2.55] on the 0–255 scale) and its pooled statistics
   (:meth:`BikanetKernelEstimator.pooled_moments`, exactly what ``estimate`` computes) are stored, once, in
   ``--moments_cache``; about 0.15 s per blurred photo per core;
2. the MLP head (the statistics have no weights) is fine-tuned on them with AdamW, one-cycle schedule, loss the
   protocol's kernel error Σ|k̂ − k|; the feature standardisation is kept;
3. after each epoch the protocol's quick and random pairs of bsds500_val are estimated (monitoring only: picking the
   best epoch on the benchmark's own pairs would flatter it); the last epoch is saved (``save_pretrained``,
   ``eval_results.json``, the model card with this stage added).

With ``--near_sharp_fraction`` some photos are blurred by at most σ = 0.6 (from 0.3, nearly a delta), so that the
estimator learns what an unblurred photo looks like and answers it with a near-delta kernel.

Example (the bundled estimator's last stage, 38,400 blurred photos, started from the stage before it):

    python train/finetune_kernel_estimator.py --train_dirs ../shared/data/bsds500_train ../shared/data/bsds500_test \\
        --per_image 96 --epochs 10 --near_sharp_fraction 0.15 --moments_cache runs/estimator_moments96_ns15.npz \\
        --output_dir runs/estimator-nearsharp
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import datasets
import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.estimation import DEFAULT_ESTIMATOR
from bikanet_hf.image_io import load_rgb, to_tensor
from bikanet_hf.kernels import degrade, sample_kernels
from bikanet_hf.modeling_kernel_estimator import BikanetKernelEstimator
from bikanet_hf.protocol import NOISE_SIGMA, protocol_pairs
from bikanet_hf.training import hardware_description


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_dirs", nargs="+", required=True, help="Folders (or Hub dataset ids) of sharp photos.")
    p.add_argument("--output_dir", required=True, help="Where the fine-tuned estimator is saved.")
    p.add_argument("--init_from", default=None, help="Estimator folder to start from (default: the bundled one).")
    p.add_argument("--per_image", type=int, default=48, help="Blurred versions of each photo (default 48).")
    p.add_argument("--bank16_fraction", type=float, default=0.3, help="Share of bank16 kernels (default 0.3).")
    p.add_argument("--noise_probability", type=float, default=0.2, help="Share of noisy photos (default 0.2).")
    p.add_argument(
        "--near_sharp_fraction",
        type=float,
        default=0.0,
        help="Share of photos blurred by at most σ = 0.6 (down to 0.3, nearly a delta), so that the estimator can "
        "answer 'no blur' for a sharp photo (default 0).",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of kernels, noise and batches (default 0).")
    p.add_argument("--moments_cache", default=None, help=".npz of the statistics: reused when it matches the flags.")
    p.add_argument("--workers", type=int, default=2, help="Processes computing the statistics (default 2).")
    p.add_argument("--learning_rate", type=float, default=3e-4, help="Peak AdamW learning rate (default 3e-4).")
    p.add_argument("--epochs", type=int, default=30, help="Passes over the blurred photos (default 30).")
    p.add_argument("--batch_size", type=int, default=128, help="Photos per step (default 128).")
    p.add_argument(
        "--validation_dir",
        default=None,
        help="Folder of the protocol's validation pairs (default: the data dir's bsds500_val).",
    )
    p.add_argument("--validation_limit", type=int, default=None, help="Only the first N validation images.")
    args = p.parse_args(argv)
    if args.per_image < 1 or args.epochs < 1 or args.batch_size < 1:
        p.error("--per_image, --epochs and --batch_size must be at least 1")
    args.init_path = args.init_from or str(DEFAULT_ESTIMATOR)
    return args


_estimator: BikanetKernelEstimator | None = None


def _moments_of(model: BikanetKernelEstimator, blurred: np.ndarray) -> torch.Tensor:
    """1×F pooled moments of one H×W×3 uint8 blurred photo, as ``estimate`` computes them."""
    return model.pooled_moments(to_tensor(blurred))


def _photo_moments(job: tuple) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """(photo index, kernel, pooled moments, noise σ) for each blurred version of one photo (read once)."""
    global _estimator
    index, path, init_from, per_image, seed, bank16_fraction, near_sharp_fraction, noise_probability = job
    torch.set_num_threads(1)
    if _estimator is None:
        _estimator = BikanetKernelEstimator.from_pretrained(init_from).eval()
    sharp = load_rgb(path)
    results = []
    for j in range(per_image):
        rng = np.random.default_rng([seed, index, j])
        kernel = sample_kernels(1, rng, bank16_fraction, near_sharp_fraction=near_sharp_fraction).kernels[0]
        noise = NOISE_SIGMA * rng.uniform() if rng.uniform() < noise_probability else 0.0
        generator = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
        blurred = degrade(sharp, kernel, noise_sigma=noise, generator=generator)
        results.append((index, kernel, _moments_of(_estimator, blurred)[0].numpy(), noise))
    return results


def photo_moments(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The statistics of every blurred training photo, from ``--moments_cache`` when it was made with these flags."""
    images = corpus.sharp_images(args.train_dirs).cast_column("sharp", datasets.Image(decode=False))
    sources = [value["path"] for value in images["sharp"]]
    recipe = {
        "sources": sources,
        "init_from": args.init_path,
        **{k: getattr(args, k) for k in ("per_image", "seed", "bank16_fraction", "noise_probability")},
    }
    if args.near_sharp_fraction:  # absent at 0, so that caches made before the option still match
        recipe["near_sharp_fraction"] = args.near_sharp_fraction
    cache = Path(args.moments_cache) if args.moments_cache else None
    if cache is not None and cache.exists():
        saved = np.load(cache)
        if json.loads(str(saved["recipe"])) == recipe:
            print(f"Statistics of {len(saved['kernel'])} blurred photos from {cache}", flush=True)
            return {k: saved[k] for k in ("kernel", "moments", "noise", "minutes")}
        print(f"{cache} was made with other flags: computing anew", flush=True)
    jobs = [
        (
            i,
            path,
            args.init_path,
            args.per_image,
            args.seed,
            args.bank16_fraction,
            args.near_sharp_fraction,
            args.noise_probability,
        )
        for i, path in enumerate(sources)
    ]
    start, results = time.time(), []
    with multiprocessing.Pool(args.workers) as pool:
        for n, photo in enumerate(pool.imap(_photo_moments, jobs), 1):
            results.extend(photo)
            if n % 20 == 0 or n == len(jobs):
                print(f"statistics: {n}/{len(jobs)} photos, {time.time() - start:.0f} s", flush=True)
    data = {
        "kernel": np.stack([r[1] for r in results]).astype(np.float32),
        "moments": np.stack([r[2] for r in results]),
        "noise": np.array([r[3] for r in results]),
        "minutes": np.array((time.time() - start) / 60),  # the card says what the statistics cost, cached or not
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, recipe=np.array(json.dumps(recipe)), **data)
    return data


def validation_moments(model: BikanetKernelEstimator, args: argparse.Namespace) -> dict[str, tuple]:
    """Per track (quick, random): the pooled moments and true kernels of bsds500_val's protocol pairs."""
    folder = args.validation_dir or str(corpus.default_data_dir() / "bsds500_val")
    tracks = {}
    for track in ("quick", "random"):
        pairs = list(protocol_pairs(folder, track=track, limit=args.validation_limit))
        moments = torch.cat([_moments_of(model, p.blurred) for p in pairs])
        tracks[track] = (moments, torch.from_numpy(np.stack([p.kernel for p in pairs])).float())
    return tracks


@torch.no_grad()
def kernel_errors(model: BikanetKernelEstimator, tracks: dict[str, tuple]) -> dict[str, float]:
    """Mean kernel error Σ|k̂ − k| per track (the estimate as ``estimate`` makes it, covariance scale 1)."""
    model.eval()
    return {track: float(model.from_moments(m, k).loss) for track, (m, k) in tracks.items()}


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    model = BikanetKernelEstimator.from_pretrained(args.init_path)
    data = photo_moments(args)
    start = time.time()
    moments, kernels = torch.from_numpy(data["moments"]).float(), torch.from_numpy(data["kernel"])
    tracks = validation_moments(model, args)
    history = [{"epoch": 0, **kernel_errors(model, tracks)}]
    print(f"epoch 0 (as initialised): {history[0]}", flush=True)
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=args.learning_rate)
    steps_per_epoch = max(1, len(moments) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, args.learning_rate, total_steps=args.epochs * steps_per_epoch, pct_start=0.05
    )
    for epoch in range(1, args.epochs + 1):
        model.train()
        order, total = torch.randperm(len(moments)), 0.0
        for step in range(steps_per_epoch):
            batch = order[step * args.batch_size : (step + 1) * args.batch_size]
            loss = model.from_moments(moments[batch], kernels[batch]).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.head.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += loss.item()
        history.append({"epoch": epoch, "train_loss": total / steps_per_epoch, **kernel_errors(model, tracks)})
        print(f"epoch {epoch}: {history[-1]}", flush=True)
    output = Path(args.output_dir)
    model.save_pretrained(output, safe_serialization=True)
    training = {
        "stage": "whole-photo fine-tuning of the head",
        "init_from": args.init_from or "the bundled estimator",  # no machine's paths in a shipped card
        "train_sources": [Path(d).name for d in args.train_dirs],
        "blurred_photos": len(moments),
        "statistics_minutes": float(data["minutes"]),
        "head_minutes": (time.time() - start) / 60,
        "hardware": hardware_description(torch.device("cpu")),
        **{k: getattr(args, k) for k in ("per_image", "bank16_fraction", "near_sharp_fraction", "noise_probability")},
        "seed": args.seed,
        **{k: getattr(args, k) for k in ("learning_rate", "epochs", "batch_size")},
    }
    results = {
        **{
            f"validation_{track}": {"kernel_l1": history[-1][track], "num_pairs": len(tracks[track][1])}
            for track in tracks
        },
        "training": training,
        "history": history,
    }
    (output / "eval_results.json").write_text(json.dumps(results, indent=2))
    card = Path(args.init_path) / "README.md"
    earlier = card.read_text() if card.exists() else ""
    (output / "README.md").write_text(earlier + model_card_section(results, history[0]))
    return output


def model_card_section(results: dict, initial: dict) -> str:
    """The paragraph this stage adds to the model card; every number from its run."""
    t, quick, random = results["training"], results["validation_quick"], results["validation_random"]
    near_sharp = t.get("near_sharp_fraction", 0.0)
    kernels = f"bank16 with probability {t['bank16_fraction']}, else the random Gaussian family"
    if near_sharp:
        kernels = (
            f"{near_sharp:.0%} nearly sharp (σ from 0.3 to 0.6, so that a sharp photo is answered with a near-delta"
            f" kernel), else {kernels}"
        )
    heading = "Fine-tuned on whole photos, nearly sharp ones included" if near_sharp else "Fine-tuned on whole photos"
    return f"""
## {heading} (`train/finetune_kernel_estimator.py`)

The head was then fine-tuned on the statistics `estimate` pools from whole photos (its 8 most textured 256×256
crops) instead of single 128×128 crops: {t["blurred_photos"]:,} blurred photos ({t["per_image"]} kernels for each
photo of {", ".join(t["train_sources"])}; {kernels}; Gaussian noise σ ~ U[0, 2.55] on
{t["noise_probability"]:.0%} of them), AdamW
{t["learning_rate"]:g} with a one-cycle schedule, {t["epochs"]} epochs of batches of {t["batch_size"]} (the last one
kept), on {t["hardware"]}: {t["statistics_minutes"]:.1f} minutes computing the statistics (once; cached),
{t["head_minutes"]:.1f} training the head and validating.
Mean kernel error on {quick["num_pairs"]} protocol pairs per track of bsds500_val (whole images, before the
deblurring scale): quick {initial["quick"]:.4f} → {quick["kernel_l1"]:.4f}, random {initial["random"]:.4f} →
{random["kernel_l1"]:.4f}.
"""


if __name__ == "__main__":
    print(main())
