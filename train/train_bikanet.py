#!/usr/bin/env python
"""Train BIKAnet (non-blind deblurring given the kernel) with 🤗 Accelerate.

Data: the blur corpus's on-the-fly mode — every sample is a fresh random crop of a sharp training image blurred
with a fresh kernel (bank16 mixed with the protocol's random Gaussian family), quantised to 8 bits as users'
files are. Validation: the protocol's quick pairs of bsds500_val (full images, true kernel), PSNR/SSIM; with
``--kernel_family motion`` camera-shake kernels and the protocol's motion track (Levin kernels) instead.

Examples:

    # CPU, a few minutes, a tiny model
    python train/train_bikanet.py --output_dir runs/tiny --max_train_steps 200 --hidden_size 16 --num_blocks 2

    # the shipped model; run the same command again to continue after an interruption
    accelerate launch train/train_bikanet.py --output_dir runs/bikanet --max_train_steps 20000 \\
        --resume_from_checkpoint latest

    # the motion-blur extension: per-pixel motion flow instead of AdaIN, trained on camera-shake kernels
    python train/train_bikanet.py --output_dir runs/bikanet-motion --kernel_family motion --kernel_size 31 \
        --kernel_conditioning motion_flow --crop_size 96 --train_batch_size 8

At the end the best checkpoint (by validation PSNR) is saved with ``save_pretrained`` into ``--output_dir``
together with the image processor, ``eval_results.json`` and a model card; ``--push_to_hub`` uploads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np
import safetensors.torch
import torch

from bikanet_hf import corpus
from bikanet_hf.configuration_bikanet import KERNEL_CONDITIONINGS, BikanetConfig
from bikanet_hf.deblurring import jpeg_noise_level, restore
from bikanet_hf.estimation import estimate_kernel
from bikanet_hf.hub import write_model_card
from bikanet_hf.image_io import jpeg_roundtrip
from bikanet_hf.image_processing_bikanet import BikanetImageProcessor
from bikanet_hf.kernels import KERNEL_SIZE
from bikanet_hf.metrics import aligned_psnr, psnr, ssim
from bikanet_hf.modeling_bikanet import JPEG_NOISE_LEVEL, BikanetForImageDeblurring, jpeg_floored_noise_level
from bikanet_hf.motion import MOTION_KERNEL_SIZE
from bikanet_hf.protocol import protocol_pairs
from bikanet_hf.shake_estimation import estimate_shake_kernel
from bikanet_hf.training import (
    TrainingTask,
    add_training_arguments,
    check_training_arguments,
    run_summary,
    run_training,
)

logger = logging.getLogger("train_bikanet")
# BikanetConfig fields that have a command-line flag of the same name.
INT_CONFIG_FIELDS = (
    "hidden_size",
    "block_hidden_size",
    "num_blocks",
    "mapping_hidden_size",
    "mapping_num_layers",
    "kernel_size",
    "wiener_feature_channels",
)
BOOL_CONFIG_FIELDS = (
    "use_kernel_adaptation",
    "use_long_term_skip",
    "use_wiener_prior",
    "adain_instance_norm",
    "kernel_estimate_input",
    "noise_level_input",
)
CONFIG_FIELDS = (*INT_CONFIG_FIELDS, *BOOL_CONFIG_FIELDS, "kernel_conditioning")
# The validation score that picks the best checkpoint of a run trained with estimated kernels (see validate).
SCORE_KEYS = {"motion": "aligned_psnr_estimated_kernel", "gaussian": "psnr_true_and_estimated"}
# The JPEG quality of the validation's JPEG track (a run trained with --jpeg_probability).
VALIDATION_JPEG_QUALITY = 90


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(
        p,
        crop_size=64,
        learning_rate=1e-3,
        learning_rate_help="Peak Adam learning rate. The paper uses 2e-4; on our CPU budget 1e-3 gained +0.48 dB "
        "over 2e-4 after 400 steps (README), so it is the default.",
        context_probability=0.1,
        context_probability_help="Fraction of crops blurred with their real surroundings; the rest are blurred "
        "with mirror padding as the protocol blurs whole images (default 0.1: real-context borders dominated the "
        "loss on small crops and slowed learning, see the README).",
    )
    g = p.add_argument_group("model (BikanetConfig fields)")
    g.add_argument("--config_name", default=None, help="A config.json or pretrained folder to start the config from.")
    g.add_argument(
        "--init_from",
        default=None,
        help="Start from the weights (and config) of a pretrained folder or Hub id, e.g. the bundled checkpoint "
        "bikanet_hf/checkpoints/bikanet, with a fresh optimiser and schedule: how a later session continues a "
        "committed model. Model flags given too change that config; weights whose shape no longer fits (e.g. the "
        "head with --kernel_conditioning motion_flow) start fresh and the log lists them.",
    )
    defaults = BikanetConfig()
    for field in INT_CONFIG_FIELDS:
        g.add_argument(
            f"--{field}", type=int, default=None, help=f"BikanetConfig.{field} (default {getattr(defaults, field)})."
        )
    for field in BOOL_CONFIG_FIELDS:
        g.add_argument(
            f"--{field}",
            type=lambda s: s.lower() in ("1", "true", "yes"),
            default=None,
            help=f"BikanetConfig.{field}: true/false (default {getattr(defaults, field)}).",
        )
    g.add_argument(
        "--kernel_conditioning",
        choices=KERNEL_CONDITIONINGS,
        default=None,
        help='BikanetConfig.kernel_conditioning: "adain" (default) or "motion_flow" (the motion-blur extension; '
        "use it with --kernel_family motion --kernel_size 31).",
    )
    p.add_argument("--loss", choices=("l1", "charbonnier"), default="l1", help="Reconstruction loss.")
    args = p.parse_args(argv)
    check_training_arguments(p, args)
    if args.init_from and args.config_name:
        p.error("--init_from takes the config from the pretrained folder; drop --config_name")
    if args.crop_size % 2:
        p.error("--crop_size must be even (the blocks work at half resolution)")
    return args


def build_config(args: argparse.Namespace) -> BikanetConfig:
    source = args.init_from or args.config_name
    config = BikanetConfig.from_pretrained(source) if source else BikanetConfig()
    for field in CONFIG_FIELDS:
        if getattr(args, field) is not None:
            setattr(config, field, getattr(args, field))
    return config


def keep_input_channels(model: BikanetForImageDeblurring, source: str) -> None:
    """After ``from_pretrained(..., ignore_mismatched_sizes=True)``: a convolution that only gained input channels
    (new inputs are appended, e.g. ``--kernel_estimate_input``) keeps its pretrained weights for the old channels, and
    the new ones start at zero — so the model starts as the pretrained one."""
    from transformers.utils import cached_file

    path = cached_file(source, "model.safetensors")
    pretrained = safetensors.torch.load_file(path)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            old = pretrained.get(name)
            if old is None or old.ndim != 4 or weight.shape[1] <= old.shape[1]:
                continue
            if weight.shape[0] == old.shape[0] and weight.shape[2:] == old.shape[2:]:
                weight.zero_()
                weight[:, : old.shape[1]] = old
                bias = name.removesuffix("weight") + "bias"
                if bias in pretrained:
                    dict(model.named_parameters())[bias].copy_(pretrained[bias])
                logger.info("%s: kept the %d pretrained input channels, new ones start at zero", name, old.shape[1])


def load_validation_pairs(folder: str, limit: int, kernel_family: str = "gaussian", noise: bool = False) -> list:
    """The protocol's quick pairs, or its motion track (Levin kernels) for a model trained on motion blur; ``noise``:
    the same pairs on the protocol's noise track (σ = 2.55)."""
    track = "motion" if kernel_family == "motion" else "quick"
    return list(protocol_pairs(folder, track=track, noise=noise, limit=limit))


def jpeg_pairs(pairs: list, quality: int = VALIDATION_JPEG_QUALITY) -> list:
    """The pairs with their blurred images saved as JPEGs of ``quality`` and read back."""
    return [dataclasses.replace(pair, blurred=jpeg_roundtrip(pair.blurred, quality)) for pair in pairs]


def track_psnr(model: BikanetForImageDeblurring, pairs: list, jpeg: bool = False) -> tuple[float, float]:
    """Mean PSNR of the model (true kernel) and of the blurred input on ``pairs``; ``jpeg``: the model is told the
    noise level ``deblur()`` tells a JPEG file."""
    scores = []
    for pair in pairs:
        level = jpeg_noise_level(pair.blurred)[0] if jpeg and model.config.noise_level_input else None
        scores.append(
            psnr(pair.sharp, restore(model, pair.blurred, pair.kernel, tile_size=None, noise_level=level)[0])
        )
    return float(np.mean(scores)), float(np.mean([psnr(pair.sharp, pair.blurred) for pair in pairs]))


@torch.no_grad()
def validate(
    model: BikanetForImageDeblurring,
    pairs: list,
    estimated_kernels: list[np.ndarray] | None = None,
    noisy_pairs: list | None = None,
    score_key: str = "psnr",
    jpeg_validation_pairs: list | None = None,
) -> dict:
    """PSNR/SSIM of the model (true kernel) and of the blurred input on the validation pairs; with
    ``estimated_kernels`` (one per pair) also of the model given those (``psnr_estimated_kernel``, ...), and its PSNR
    after the best shift of up to 6 px (``aligned_psnr_estimated_kernel``, the blind score of camera shake: a blind
    estimate does not say where the kernel sits), and ``psnr_true_and_estimated``, the mean of the two unaligned
    PSNRs (the score of Gaussian blur, whose estimates are centred). With ``noisy_pairs`` (the same pairs on the noise
    track), also the model's PSNR there with the true kernel (``psnr_noisy``, and ``blurred_psnr_noisy``) and
    ``score_with_noise``, the mean of that and ``score_key``: the score of a run that trains with noise. With
    ``jpeg_validation_pairs`` (the pairs saved as JPEGs, :func:`jpeg_pairs`), likewise ``psnr_jpeg`` (told the noise
    level ``deblur()`` tells a JPEG file), ``blurred_psnr_jpeg`` and ``score_with_jpeg``, the mean of ``score_key``,
    ``psnr_noisy`` (if measured) and ``psnr_jpeg``: the score of a run that trains with JPEGs."""
    model.eval()
    rows = {"psnr": [], "ssim": [], "blurred_psnr": [], "blurred_ssim": []}
    if estimated_kernels is not None:
        rows |= {"psnr_estimated_kernel": [], "ssim_estimated_kernel": [], "aligned_psnr_estimated_kernel": []}
    for i, pair in enumerate(pairs):
        out = restore(model, pair.blurred, pair.kernel, tile_size=None)[0]
        rows["psnr"].append(psnr(pair.sharp, out))
        rows["ssim"].append(ssim(pair.sharp, out))
        if estimated_kernels is not None:
            out = restore(model, pair.blurred, estimated_kernels[i], tile_size=None, kernel_is_estimate=True)[0]
            rows["psnr_estimated_kernel"].append(psnr(pair.sharp, out))
            rows["ssim_estimated_kernel"].append(ssim(pair.sharp, out))
            rows["aligned_psnr_estimated_kernel"].append(aligned_psnr(pair.sharp, out))
        rows["blurred_psnr"].append(psnr(pair.sharp, pair.blurred))
        rows["blurred_ssim"].append(ssim(pair.sharp, pair.blurred))
    result = {k: float(np.mean(v)) for k, v in rows.items()}
    result["delta_psnr"] = result["psnr"] - result["blurred_psnr"]
    if estimated_kernels is not None:
        result["psnr_true_and_estimated"] = (result["psnr"] + result["psnr_estimated_kernel"]) / 2
    if noisy_pairs is not None:
        result["psnr_noisy"], result["blurred_psnr_noisy"] = track_psnr(model, noisy_pairs)
        result["score_with_noise"] = (result[score_key] + result["psnr_noisy"]) / 2
    if jpeg_validation_pairs is not None:
        result["psnr_jpeg"], result["blurred_psnr_jpeg"] = track_psnr(model, jpeg_validation_pairs, jpeg=True)
        tracks = [result[score_key], result.get("psnr_noisy"), result["psnr_jpeg"]]
        result["score_with_jpeg"] = float(np.mean([t for t in tracks if t is not None]))
    result["num_pairs"] = len(pairs)
    return result


def describe(metrics: dict) -> str:
    blind = (
        f"; estimated kernel {metrics['psnr_estimated_kernel']:.3f} dB "
        f"(aligned {metrics['aligned_psnr_estimated_kernel']:.3f})"
        if "psnr_estimated_kernel" in metrics
        else ""
    )
    noisy = (
        f"; noise track {metrics['psnr_noisy']:.3f} dB (blurred {metrics['blurred_psnr_noisy']:.3f})"
        if "psnr_noisy" in metrics
        else ""
    )
    if "psnr_jpeg" in metrics:
        jpeg = f"JPEG q{VALIDATION_JPEG_QUALITY} {metrics['psnr_jpeg']:.3f} dB"
        noisy += f"; {jpeg} (blurred {metrics['blurred_psnr_jpeg']:.3f})"
    return (
        f"validation PSNR {metrics['psnr']:.3f} dB (blurred {metrics['blurred_psnr']:.3f}, "
        f"Δ {metrics['delta_psnr']:+.3f}), SSIM {metrics['ssim']:.4f}{blind}{noisy}"
    )


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((x.float() - y.float()) ** 2 + eps * eps).mean()


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    validation_dir = args.validation_dir or str(corpus.default_data_dir() / "bsds500_val")

    def make_task() -> TrainingTask:
        pairs = load_validation_pairs(validation_dir, args.validation_limit, args.kernel_family)
        # A run that trains with estimated kernels is scored on them too: the blind estimates of the validation
        # images as deblur() makes them, made once (the estimators are deterministic).
        estimated = None
        if args.estimated_kernel_probability > 0 and args.kernel_family == "motion":
            estimated = [estimate_shake_kernel(pair.blurred / 255.0, MOTION_KERNEL_SIZE) for pair in pairs]
        elif args.estimated_kernel_probability > 0:
            estimated = [estimate_kernel(pair.blurred, method="amortized", for_deblurring=True) for pair in pairs]
        if args.init_from:
            model = BikanetForImageDeblurring.from_pretrained(
                args.init_from, config=build_config(args), ignore_mismatched_sizes=True
            )
            keep_input_channels(model, args.init_from)
        else:
            model = BikanetForImageDeblurring(build_config(args))
        training_kernel_size = MOTION_KERNEL_SIZE if args.kernel_family == "motion" else KERNEL_SIZE
        if model.config.kernel_size != training_kernel_size:
            raise SystemExit(
                f"--kernel_family {args.kernel_family} trains with {training_kernel_size}×{training_kernel_size} "
                f"kernels but the model takes {model.config.kernel_size}×{model.config.kernel_size}: pass "
                f"--kernel_size {training_kernel_size}."
            )

        jpeg_floor = args.jpeg_probability > 0 and model.config.noise_level_input

        def compute_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
            noise_level = None
            if jpeg_floor:
                # JPEG crops are told what deblur() tells a JPEG file: the measured level, at least JPEG_NOISE_LEVEL.
                noise_level = jpeg_floored_noise_level(batch["blurred"], batch["jpeg_quality"] > 0)
            out = model(
                pixel_values=batch["blurred"],
                kernel=batch["model_kernel"],
                kernel_is_estimate=batch["kernel_is_estimate"],
                labels=batch["sharp"],
                noise_level=noise_level,
            )
            return out.loss if args.loss == "l1" else charbonnier(out.reconstruction, batch["sharp"])

        score_key = SCORE_KEYS[args.kernel_family] if estimated is not None else "psnr"
        # A run that trains with noise is scored on the noise track too (true kernel), so that the kept checkpoint
        # is not the one that learnt least about noise.
        noisy = None
        if args.noise_probability > 0 and args.noise_sigma > 0:
            noisy = load_validation_pairs(validation_dir, args.validation_limit, args.kernel_family, noise=True)
        jpegs = jpeg_pairs(pairs) if args.jpeg_probability > 0 else None
        if jpegs is not None:
            best_key = "score_with_jpeg"
        else:
            best_key = "score_with_noise" if noisy is not None else score_key
        return TrainingTask(
            name="BIKAnet",
            model=model,
            compute_loss=compute_loss,
            validate=lambda model, device: validate(model, pairs, estimated, noisy, score_key, jpegs),
            describe=describe,
            finalize=lambda output_dir, state: finalize(output_dir, state, args),
            score_key=best_key,
        )

    return run_training(args, make_task)


def finalize(output_dir: Path, state: dict, args: argparse.Namespace) -> None:
    """Save the best model, its processor, eval results and a model card at the top of ``output_dir``."""
    best = BikanetForImageDeblurring.from_pretrained(output_dir / "best")
    best.save_pretrained(output_dir, safe_serialization=True)
    BikanetImageProcessor().save_pretrained(output_dir)
    best_metrics = next(v for v in state["validation"] if v["step"] == state["best_step"])
    training = run_summary(state, args) | {
        "loss": args.loss,
        "init_from": args.init_from,
        "kernel_estimate_input": best.config.kernel_estimate_input,
        "noise_level_input": best.config.noise_level_input,
        # What JPEG crops were told (a floor on their measured noise level), for models that read one
        "jpeg_noise_level": JPEG_NOISE_LEVEL if args.jpeg_probability and best.config.noise_level_input else None,
    }
    results = {"validation_quick": best_metrics, "training": training, "history": state["validation"]}
    (output_dir / "eval_results.json").write_text(json.dumps(results, indent=2))
    write_model_card(output_dir, results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
