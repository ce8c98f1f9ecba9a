#!/usr/bin/env python
"""Train BIKAnet (non-blind deblurring given the kernel) with 🤗 Accelerate.

Data: the blur corpus's on-the-fly mode — every sample is a fresh random crop of a sharp training image blurred
with a fresh kernel (bank16 mixed with the protocol's random Gaussian family), quantised to 8 bits as users'
files are. Validation: the protocol's quick pairs of bsds500_val (full images, true kernel), PSNR/SSIM.

Examples:

    # CPU, a few minutes, a tiny model
    python train/train_bikanet.py --output_dir runs/tiny --max_train_steps 200 --hidden_size 16 --num_blocks 2

    # the shipped model; run the same command again to continue after an interruption
    accelerate launch train/train_bikanet.py --output_dir runs/bikanet --max_train_steps 20000 \\
        --resume_from_checkpoint latest

At the end the best checkpoint (by validation PSNR) is saved with ``save_pretrained`` into ``--output_dir``
together with the image processor, ``eval_results.json`` and a model card; ``--push_to_hub`` uploads it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from bikanet_hf import corpus
from bikanet_hf.configuration_bikanet import BikanetConfig
from bikanet_hf.hub import write_model_card
from bikanet_hf.image_processing_bikanet import BikanetImageProcessor
from bikanet_hf.metrics import psnr, ssim
from bikanet_hf.modeling_bikanet import BikanetForImageDeblurring
from bikanet_hf.protocol import protocol_pairs
from bikanet_hf.training import (
    EMA,
    count_parameters,
    hardware_description,
    load_trainer_state,
    resolve_resume_path,
    save_checkpoint,
)

logger = logging.getLogger("train_bikanet")
# BikanetConfig fields that have a command-line flag of the same name.
INT_CONFIG_FIELDS = ("hidden_size", "block_hidden_size", "num_blocks", "mapping_hidden_size", "mapping_num_layers")
BOOL_CONFIG_FIELDS = ("use_kernel_adaptation", "use_long_term_skip", "use_wiener_prior", "adain_instance_norm")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("output and resume")
    g.add_argument("--output_dir", required=True, help="Folder for checkpoints, logs and the final model.")
    g.add_argument(
        "--resume_from_checkpoint",
        default=None,
        help='"latest" (continue the newest complete checkpoint-N in --output_dir, or start if none) '
        "or a checkpoint folder.",
    )
    g.add_argument("--checkpointing_steps", type=int, default=500, help="Save a checkpoint-N every this many steps.")
    g.add_argument("--checkpoints_total_limit", type=int, default=3, help="Keep at most this many checkpoints.")
    g.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Allow starting a new run in a folder that already holds checkpoints.",
    )

    g = p.add_argument_group("data")
    g.add_argument(
        "--train_dirs",
        nargs="+",
        default=None,
        help="Sharp training image folders or Hub image dataset ids (default: bsds500_train).",
    )
    g.add_argument("--validation_dir", default=None, help="Validation folder (default: bsds500_val).")
    g.add_argument(
        "--validation_limit",
        type=int,
        default=16,
        help="Periodic validation uses the first N quick pairs (full evaluation: train/evaluate.py).",
    )
    g.add_argument("--crop_size", type=int, default=64, help="Training crop side in pixels.")
    g.add_argument(
        "--bank16_fraction",
        type=float,
        default=0.5,
        help="Probability that a sample's kernel is a bank16 kernel instead of a random Gaussian.",
    )
    g.add_argument(
        "--noise_sigma",
        type=float,
        default=0.0,
        help="Noise augmentation: max σ (0–255 scale) of Gaussian noise added before quantisation.",
    )
    g.add_argument("--noise_probability", type=float, default=0.0, help="Fraction of samples that get noise.")
    g.add_argument(
        "--context_probability",
        type=float,
        default=0.1,
        help="Fraction of crops blurred with their real surroundings; the rest are blurred with mirror "
        "padding as the protocol blurs whole images (default 0.1: real-context borders dominated "
        "the loss on small crops and slowed learning, see the README).",
    )
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes.")

    g = p.add_argument_group("model (BikanetConfig fields)")
    g.add_argument("--config_name", default=None, help="A config.json or pretrained folder to start the config from.")
    g.add_argument(
        "--init_from",
        default=None,
        help="Start from the weights (and config) of a pretrained folder or Hub id, e.g. the bundled checkpoint "
        "bikanet_hf/checkpoints/bikanet, with a fresh optimiser and schedule: how a later session continues a "
        "committed model.",
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

    g = p.add_argument_group("optimisation")
    g.add_argument("--max_train_steps", type=int, default=20000, help="Total optimiser steps.")
    g.add_argument(
        "--stop_after_steps",
        type=int,
        default=None,
        help="End this invocation at this global step (checkpoint and final model written) while the "
        "schedule still targets --max_train_steps: a time-boxed session that a later run of the same "
        "command with --resume_from_checkpoint latest continues.",
    )
    g.add_argument("--train_batch_size", type=int, default=16, help="Samples per device per step.")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Batches per optimiser step.")
    g.add_argument(
        "--learning_rate",
        type=float,
        default=1e-3,
        help="Peak Adam learning rate. The paper uses 2e-4; on our CPU budget 1e-3 gained +0.48 dB over "
        "2e-4 after 400 steps (README), so it is the default.",
    )
    g.add_argument("--lr_warmup_steps", type=int, default=200, help="Linear warm-up steps before cosine decay.")
    g.add_argument("--loss", choices=("l1", "charbonnier"), default="l1", help="Reconstruction loss.")
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping norm.")
    g.add_argument("--ema_decay", type=float, default=0.0, help="EMA of weights (e.g. 0.999); 0 disables it.")
    g.add_argument(
        "--mixed_precision",
        choices=("auto", "no", "bf16", "fp16"),
        default="auto",
        help='"auto": bf16 on a GPU, float32 on the CPU.',
    )
    g.add_argument("--channels_last", action="store_true", help="Use channels-last memory format.")
    g.add_argument("--seed", type=int, default=0, help="Seed of weights and data (the data is a function of it).")

    g = p.add_argument_group("validation and logging")
    g.add_argument("--validation_steps", type=int, default=500, help="Validate every this many steps.")
    g.add_argument("--logging_steps", type=int, default=25, help="Append the training loss to the log this often.")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")

    g = p.add_argument_group("hub")
    g.add_argument("--push_to_hub", action="store_true", help="Upload the final model folder to the Hub.")
    g.add_argument("--hub_model_id", default=None, help="Repository id for --push_to_hub, e.g. user/bikanet.")
    g.add_argument("--hub_private", action="store_true", help="Create the Hub repository as private.")
    g.add_argument("--hub_revision", default=None, help="Branch to push to (default: main).")
    args = p.parse_args(argv)

    if args.init_from and (
        args.config_name or any(getattr(args, f) is not None for f in INT_CONFIG_FIELDS + BOOL_CONFIG_FIELDS)
    ):
        p.error("--init_from takes the architecture from the pretrained folder; drop --config_name and model flags")
    if args.push_to_hub and not args.hub_model_id:
        p.error("--push_to_hub needs --hub_model_id")
    for name in ("max_train_steps", "train_batch_size", "checkpointing_steps", "validation_steps", "crop_size"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    if args.crop_size % 2:
        p.error("--crop_size must be even (the blocks work at half resolution)")
    return args


def build_config(args: argparse.Namespace) -> BikanetConfig:
    config = BikanetConfig.from_pretrained(args.config_name) if args.config_name else BikanetConfig()
    for field in INT_CONFIG_FIELDS + BOOL_CONFIG_FIELDS:
        if getattr(args, field) is not None:
            setattr(config, field, getattr(args, field))
    return config


def load_validation_pairs(folder: str, limit: int) -> list:
    return list(protocol_pairs(folder, track="quick", limit=limit))


@torch.no_grad()
def validate(model: torch.nn.Module, pairs: list, device: torch.device) -> dict:
    """PSNR/SSIM of the model (true kernel) and of the blurred input on the protocol's quick pairs."""
    model.eval()
    rows = {"psnr": [], "ssim": [], "blurred_psnr": [], "blurred_ssim": []}
    for pair in pairs:
        x = torch.from_numpy(pair.blurred).permute(2, 0, 1)[None].float().div(255).to(device)
        k = torch.from_numpy(pair.kernel)[None].float().to(device)
        y = model(pixel_values=x, kernel=k).reconstruction
        out = y[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().cpu().numpy()
        rows["psnr"].append(psnr(pair.sharp, out))
        rows["ssim"].append(ssim(pair.sharp, out))
        rows["blurred_psnr"].append(psnr(pair.sharp, pair.blurred))
        rows["blurred_ssim"].append(ssim(pair.sharp, pair.blurred))
    model.train()
    result = {k: float(np.mean(v)) for k, v in rows.items()}
    result["delta_psnr"] = result["psnr"] - result["blurred_psnr"]
    result["num_pairs"] = len(pairs)
    return result


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((x.float() - y.float()) ** 2 + eps * eps).mean()


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if args.threads:
        torch.set_num_threads(args.threads)
    output_dir = Path(args.output_dir)
    mixed_precision = args.mixed_precision
    if mixed_precision == "auto":
        mixed_precision = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=str(output_dir)),
    )
    resume_path = resolve_resume_path(output_dir, args.resume_from_checkpoint)
    if resume_path is None and list(output_dir.glob("checkpoint-*")) and not args.overwrite_output_dir:
        raise SystemExit(
            f"{output_dir} already holds checkpoints: pass --resume_from_checkpoint latest to continue "
            "that run or --overwrite_output_dir to start a new one there."
        )
    set_seed(args.seed)

    # --- data: a fresh kernel and crop for every sample, a pure function of (seed, sample index) -----------------
    data_dir = corpus.default_data_dir()
    train_sources = args.train_dirs or [str(data_dir / "bsds500_train")]
    validation_dir = args.validation_dir or str(data_dir / "bsds500_val")
    samples_per_step = args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
    with accelerator.main_process_first():
        sharp = corpus.sharp_images(train_sources)
        train_dataset = corpus.on_the_fly(
            sharp,
            num_samples=args.max_train_steps * samples_per_step,
            crop_size=args.crop_size,
            seed=args.seed,
            bank16_fraction=args.bank16_fraction,
            noise_sigma=args.noise_sigma,
            noise_probability=args.noise_probability,
            context_probability=args.context_probability,
        )
    # Sequential order: the randomness is in the samples themselves, so resuming is skipping the batches seen.
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.train_batch_size,
        shuffle=False,
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    validation_pairs = (
        load_validation_pairs(validation_dir, args.validation_limit) if accelerator.is_main_process else []
    )

    # --- model and optimisation ---------------------------------------------------------------------------------
    if args.init_from:
        model = BikanetForImageDeblurring.from_pretrained(args.init_from)
    else:
        model = BikanetForImageDeblurring(build_config(args))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    model, optimizer, train_dataloader, scheduler = accelerator.prepare(model, optimizer, train_dataloader, scheduler)
    ema = EMA(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay > 0 else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)

    state = {
        "global_step": 0,
        "train_seconds": 0.0,
        "best_psnr": -math.inf,
        "best_step": None,
        "validation": [],
        "log": [],
        "args": vars(args),
        "num_parameters": count_parameters(model),
        "hardware": hardware_description(accelerator.device),
    }
    if resume_path is not None:
        accelerator.load_state(str(resume_path))
        state = load_trainer_state(resume_path) | {"args": vars(args)}
        logger.info("Resumed from %s at step %d", resume_path, state["global_step"])
    first_step = state["global_step"]
    batches_to_skip = first_step * args.gradient_accumulation_steps
    dataloader = (
        accelerator.skip_first_batches(train_dataloader, batches_to_skip) if batches_to_skip else train_dataloader
    )

    logger.info(
        "BIKAnet: %d parameters; %d steps of %d samples; device %s, precision %s",
        state["num_parameters"],
        args.max_train_steps,
        samples_per_step,
        accelerator.device,
        mixed_precision,
    )
    progress = tqdm(
        total=args.max_train_steps,
        initial=first_step,
        desc="train",
        unit="step",
        disable=not accelerator.is_local_main_process,
        dynamic_ncols=True,
    )
    model.train()
    tick = time.perf_counter()
    running_loss, running_count = 0.0, 0
    last_step = min(args.max_train_steps, args.stop_after_steps or args.max_train_steps)
    for batch in dataloader:
        if state["global_step"] >= last_step:
            break
        with accelerator.accumulate(model):
            blurred, sharp_images, kernel = batch["blurred"], batch["sharp"], batch["kernel"]
            if args.channels_last:
                blurred = blurred.contiguous(memory_format=torch.channels_last)
            out = model(pixel_values=blurred, kernel=kernel, labels=sharp_images)
            loss = out.loss if args.loss == "l1" else charbonnier(out.reconstruction, sharp_images)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        running_loss += loss.detach().item()
        running_count += 1
        if not accelerator.sync_gradients:
            continue
        state["global_step"] += 1
        step = state["global_step"]
        if ema is not None:
            ema.update(accelerator.unwrap_model(model))
        progress.update(1)
        progress.set_postfix(loss=f"{running_loss / running_count:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if step % args.logging_steps == 0:
            state["log"].append({"step": step, "loss": running_loss / running_count, "lr": scheduler.get_last_lr()[0]})
            running_loss, running_count = 0.0, 0

        is_last = step >= last_step
        if step % args.validation_steps == 0 or is_last:
            state["train_seconds"] += time.perf_counter() - tick
            if accelerator.is_main_process:
                eval_model = ema.shadow if ema is not None else accelerator.unwrap_model(model)
                metrics = validate(eval_model, validation_pairs, accelerator.device) | {"step": step}
                if ema is not None:  # measure what the EMA buys: the raw weights on the same pairs
                    raw = validate(accelerator.unwrap_model(model), validation_pairs, accelerator.device)
                    metrics["psnr_without_ema"] = raw["psnr"]
                state["validation"].append(metrics)
                logger.info(
                    "step %d: validation PSNR %.3f dB (blurred %.3f, Δ %+.3f), SSIM %.4f",
                    step,
                    metrics["psnr"],
                    metrics["blurred_psnr"],
                    metrics["delta_psnr"],
                    metrics["ssim"],
                )
                if metrics["psnr"] > state["best_psnr"]:
                    state["best_psnr"], state["best_step"] = metrics["psnr"], step
                    eval_model.save_pretrained(output_dir / "best", safe_serialization=True)
            tick = time.perf_counter()
        if step % args.checkpointing_steps == 0 or is_last:
            state["train_seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            save_checkpoint(accelerator, output_dir, step, state, args.checkpoints_total_limit)
    progress.close()
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        finalize(output_dir, state, args)
    accelerator.end_training()
    return output_dir


def finalize(output_dir: Path, state: dict, args: argparse.Namespace) -> None:
    """Save the best model, its processor, eval results and a model card at the top of ``output_dir``."""
    best = BikanetForImageDeblurring.from_pretrained(output_dir / "best")
    best.save_pretrained(output_dir, safe_serialization=True)
    BikanetImageProcessor().save_pretrained(output_dir)
    best_metrics = next(v for v in state["validation"] if v["step"] == state["best_step"])
    training = {
        "steps": state["global_step"],
        "best_step": state["best_step"],
        "train_minutes": state["train_seconds"] / 60,
        "hardware": state["hardware"],
        "batch_size": args.train_batch_size,
        "crop_size": args.crop_size,
        "learning_rate": args.learning_rate,
        "loss": args.loss,
        "ema_decay": args.ema_decay,
        "bank16_fraction": args.bank16_fraction,
        "context_probability": args.context_probability,
        "noise_sigma": args.noise_sigma,
        "seed": args.seed,
        "train_sources": [Path(s).name for s in (args.train_dirs or ["bsds500_train"])],
        "num_parameters": state["num_parameters"],
    }
    results = {"validation_quick": best_metrics, "training": training, "history": state["validation"]}
    (output_dir / "eval_results.json").write_text(json.dumps(results, indent=2))
    write_model_card(output_dir, results)
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.hub_model_id, private=args.hub_private, exist_ok=True)
        if args.hub_revision:
            api.create_branch(args.hub_model_id, branch=args.hub_revision, exist_ok=True)
        url = api.upload_folder(
            repo_id=args.hub_model_id,
            folder_path=str(output_dir),
            revision=args.hub_revision,
            ignore_patterns=["checkpoint-*", "best/*", "*.tmp"],
            commit_message="Upload BIKAnet checkpoint",
        )
        logger.info("Pushed to %s", url)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
