"""Pieces every training script of the project shares: checkpoint folders, exact resume, EMA, timing.

The scripts in ``train/`` follow diffusers' and accelerate's examples: ``checkpoint-N`` folders written by
``Accelerator.save_state`` with a total limit, ``--resume_from_checkpoint latest`` continuing the same run (step,
optimizer, scheduler, RNG and data position), and a ``trainer_state.json`` with the history.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .image_io import JPEG_QUALITY_RANGE
from .kernels import DEFOCUS_RADIUS_RANGE, NEAR_SHARP_SIGMA_RANGE

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint-N`` folders in ``output_dir``, oldest (smallest N) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def is_complete_checkpoint(path: Path) -> bool:
    """A checkpoint is complete once its state file is written (it is written last)."""
    try:
        json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return True


def resolve_resume_path(output_dir: str | os.PathLike, resume_from_checkpoint: str | None) -> Path | None:
    """``"latest"`` → the newest complete checkpoint in ``output_dir`` (None when there is none yet, so the same
    command starts or continues a run); a path → that checkpoint, which must exist."""
    if not resume_from_checkpoint:
        return None
    if resume_from_checkpoint != "latest":
        path = Path(resume_from_checkpoint)
        if not is_complete_checkpoint(path):
            raise ValueError(f"{path} is not a complete checkpoint folder (no readable {STATE_FILE}).")
        return path
    for path in reversed(list_checkpoints(output_dir)):
        if is_complete_checkpoint(path):
            return path
        logger.warning("Skipping incomplete checkpoint %s", path)
    return None


def load_first_good_checkpoint(accelerator, output_dir, resume_path: Path, requested: str) -> Path:
    """``accelerator.load_state`` from ``resume_path``; with ``--resume_from_checkpoint latest``, a checkpoint whose
    files are corrupt (e.g. truncated by a full disk) is skipped with a warning for the next older complete one.
    A requested checkpoint that does not load, or no loadable one at all, ends the run with a message saying so."""
    candidates = [resume_path]
    if requested == "latest":
        checkpoints = list_checkpoints(output_dir)  # oldest first, so the older ones come before resume_path
        candidates += [p for p in reversed(checkpoints[: checkpoints.index(resume_path)]) if is_complete_checkpoint(p)]
    for path in candidates:
        try:
            accelerator.load_state(str(path))
        except Exception as err:  # safetensors, torch.load and pickle each fail their own way on a damaged file
            if requested != "latest":
                raise SystemExit(f"Checkpoint {path} is corrupt and cannot be resumed from: {err}") from None
            logger.warning("Checkpoint %s is corrupt (%s); falling back to an older one.", path, err)
            continue
        return path
    raise SystemExit(
        f"No checkpoint in {output_dir} could be loaded (all corrupt); move them away, or pass --overwrite_output_dir "
        "without --resume_from_checkpoint to start a new run."
    )


def save_checkpoint(accelerator, output_dir: str | os.PathLike, step: int, state: dict, total_limit: int | None):
    """Write ``checkpoint-{step}`` (accelerate state, then the trainer state last) and prune the oldest beyond
    ``total_limit``. Returns the checkpoint path."""
    path = Path(output_dir) / f"checkpoint-{step}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        tmp = path / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path / STATE_FILE)  # atomic: a checkpoint without this file is incomplete
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


def load_trainer_state(path: Path) -> dict:
    return json.loads((path / STATE_FILE).read_text())


class EMA:
    """Exponential moving average of a model's weights (``decay`` per step, with the usual warm-up
    ``min(decay, (1 + step) / (10 + step))`` so early averages are not dominated by the random init)."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for ema_p, p in zip(self.shadow.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach().to(ema_p.dtype), 1 - d)

    def state_dict(self) -> dict:
        return {"shadow": self.shadow.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state["shadow"])
        self.num_updates = state["num_updates"]
        self.decay = state["decay"]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hardware_description(device: torch.device) -> str:
    """A one-line description of where training ran, for model cards."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------------------------------------------------------
# The training loop every script of train/ runs
# ---------------------------------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_training_arguments(
    parser: argparse.ArgumentParser,
    *,
    crop_size: int,
    learning_rate: float,
    learning_rate_help: str,
    context_probability: float,
    context_probability_help: str,
) -> None:
    """The flags shared by the training scripts (output and resume, data, optimisation, validation, hub)."""
    g = parser.add_argument_group("output and resume")
    g.add_argument("--output_dir", required=True, help="Folder for checkpoints, logs and the final model.")
    g.add_argument(
        "--resume_from_checkpoint",
        default=None,
        help='"latest" (continue the newest complete checkpoint-N in --output_dir, or start if none) '
        "or a checkpoint folder.",
    )
    g.add_argument("--checkpointing_steps", type=_positive_int, default=500, help="Save checkpoint-N this often.")
    g.add_argument("--checkpoints_total_limit", type=int, default=3, help="Keep at most this many checkpoints.")
    g.add_argument(
        "--overwrite_output_dir", action="store_true", help="Allow a new run in a folder that holds checkpoints."
    )

    g = parser.add_argument_group("data")
    g.add_argument(
        "--train_dirs",
        nargs="+",
        default=None,
        help="Sharp training image folders or Hub image dataset ids (default: bsds500_train).",
    )
    g.add_argument("--validation_dir", default=None, help="Validation folder (default: bsds500_val).")
    g.add_argument(
        "--validation_limit",
        type=_positive_int,
        default=16,
        help="Periodic validation uses the first N quick pairs (full evaluation: the evaluation scripts).",
    )
    g.add_argument("--crop_size", type=_positive_int, default=crop_size, help="Training crop side in pixels.")
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
        "--jpeg_probability",
        type=float,
        default=0.0,
        help="Fraction of samples whose blurred crop is saved as a JPEG (quality {}–{}) and read back, as users' "
        "photos come; BIKAnet models that read the noise level are told at least the JPEG noise floor "
        "(modeling_bikanet.JPEG_NOISE_LEVEL) for them, as deblur() does for JPEG files.".format(*JPEG_QUALITY_RANGE),
    )
    g.add_argument(
        "--defocus_fraction",
        type=float,
        default=0.0,
        help="Gaussian family: the fraction of samples blurred with a defocus disk (radius {:g}–{:g} px, the blur of "
        "a lens out of focus) instead of a Gaussian.".format(*DEFOCUS_RADIUS_RANGE),
    )
    g.add_argument(
        "--near_sharp_fraction",
        type=float,
        default=0.0,
        help="Gaussian family: the fraction of the other samples blurred with a nearly sharp Gaussian (σ {:g}–{:g}, "
        "as a sharp photo looks to the kernel estimator), so that the model learns to leave sharp photos as they are; "
        "use with --kernel_estimates made with the same option.".format(*NEAR_SHARP_SIGMA_RANGE),
    )
    g.add_argument(
        "--kernel_family",
        choices=("gaussian", "motion"),
        default="gaussian",
        help='Training blur: "gaussian" (bank16 and the random family, 17×17) or "motion" (random camera-shake '
        "kernels, 31×31; validation then uses the protocol's motion track, the Levin kernels).",
    )
    g.add_argument("--context_probability", type=float, default=context_probability, help=context_probability_help)
    g.add_argument(
        "--estimated_kernel_probability",
        type=float,
        default=0.0,
        help="BIKAnet: the fraction of samples whose model is given the blind estimate of the kernel instead of "
        "the true one, so that it learns to deblur with its estimator's errors. Camera shake: the edge-prediction "
        "estimate, from the crop (about 0.1 s more per such sample on a CPU core) or from --kernel_estimates, "
        "aligned to the true kernel by a whole-pixel shift; the run keeps the checkpoint with the best aligned "
        "blind PSNR. Gaussian blur: needs --kernel_estimates; the run keeps the checkpoint with the best mean of "
        "the PSNRs with the true and the estimated kernels.",
    )
    g.add_argument(
        "--kernel_estimates",
        default=None,
        help="With --estimated_kernel_probability: an .npz of train/precompute_kernel_estimates.py (made from the "
        "same --train_dirs and --kernel_family); those samples then use estimates made from whole blurred photos.",
    )
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes.")

    g = parser.add_argument_group("optimisation")
    g.add_argument("--max_train_steps", type=_positive_int, default=20000, help="Total optimiser steps.")
    g.add_argument(
        "--stop_after_steps",
        type=_positive_int,
        default=None,
        help="End this invocation at this global step (checkpoint and final model written) while the "
        "schedule still targets --max_train_steps: a time-boxed session that a later run of the same "
        "command with --resume_from_checkpoint latest continues.",
    )
    g.add_argument("--train_batch_size", type=_positive_int, default=16, help="Samples per device per step.")
    g.add_argument("--gradient_accumulation_steps", type=_positive_int, default=1, help="Batches per optimiser step.")
    g.add_argument("--learning_rate", type=float, default=learning_rate, help=learning_rate_help)
    g.add_argument("--lr_warmup_steps", type=int, default=200, help="Linear warm-up steps before cosine decay.")
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

    g = parser.add_argument_group("validation and logging")
    g.add_argument("--validation_steps", type=_positive_int, default=500, help="Validate every this many steps.")
    g.add_argument("--logging_steps", type=_positive_int, default=25, help="Log the training loss this often.")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")

    g = parser.add_argument_group("hub")
    g.add_argument("--push_to_hub", action="store_true", help="Upload the final model folder to the Hub.")
    g.add_argument("--hub_model_id", default=None, help="Repository id for --push_to_hub, e.g. user/name.")
    g.add_argument("--hub_private", action="store_true", help="Create the Hub repository as private.")
    g.add_argument("--hub_revision", default=None, help="Branch to push to (default: main).")


def check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id")
    if not 0.0 <= args.estimated_kernel_probability <= 1.0:
        parser.error("--estimated_kernel_probability must be in [0, 1]")
    if args.estimated_kernel_probability > 0 and args.kernel_family != "motion" and not args.kernel_estimates:
        parser.error(
            "--estimated_kernel_probability with Gaussian blur needs --kernel_estimates (whole-photo estimates of "
            "train/precompute_kernel_estimates.py --kernel_family gaussian)"
        )
    if args.kernel_estimates and args.estimated_kernel_probability == 0:
        parser.error("--kernel_estimates needs --estimated_kernel_probability > 0")


@dataclass
class TrainingTask:
    """What a training script adds to the shared loop: its model and how to train, score and save it.

    ``compute_loss(model, batch)`` returns the loss of an on-the-fly batch; ``validate(model, device)`` returns a
    dict of metrics in which ``score_key`` decides the best checkpoint; ``describe(metrics)`` is its log line;
    ``finalize(output_dir, state)`` writes the final model folder from ``output_dir / "best"``.
    """

    name: str
    model: nn.Module
    compute_loss: Callable[[nn.Module, dict], torch.Tensor]
    validate: Callable[[nn.Module, torch.device], dict]
    describe: Callable[[dict], str]
    finalize: Callable[[Path, dict], None]
    score_key: str
    higher_is_better: bool = True


def training_sources(args: argparse.Namespace) -> list[str]:
    """The sharp image sources of a run: ``--train_dirs``, or bsds500_train of the shared data."""
    from . import corpus

    return args.train_dirs or [str(corpus.default_data_dir() / "bsds500_train")]


def run_training(args: argparse.Namespace, make_task: Callable[[], TrainingTask]) -> Path:
    """Train with 🤗 Accelerate on the corpus's on-the-fly data; checkpoints, exact resume, validation, EMA."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    from . import corpus

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
    if resume_path is None and list_checkpoints(output_dir) and not args.overwrite_output_dir:
        raise SystemExit(
            f"{output_dir} already holds checkpoints: pass --resume_from_checkpoint latest to continue "
            "that run or --overwrite_output_dir to start a new one there."
        )
    set_seed(args.seed)

    # Data: a fresh kernel and crop for every sample, a pure function of (seed, sample index).
    train_sources = training_sources(args)
    samples_per_step = args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
    with accelerator.main_process_first():
        train_dataset = corpus.on_the_fly(
            corpus.sharp_images(train_sources),
            num_samples=args.max_train_steps * samples_per_step,
            crop_size=args.crop_size,
            seed=args.seed,
            bank16_fraction=args.bank16_fraction,
            noise_sigma=args.noise_sigma,
            noise_probability=args.noise_probability,
            context_probability=args.context_probability,
            kernel_family=args.kernel_family,
            estimated_kernel_probability=args.estimated_kernel_probability,
            kernel_estimates=args.kernel_estimates,
            defocus_fraction=args.defocus_fraction,
            jpeg_probability=args.jpeg_probability,
            near_sharp_fraction=args.near_sharp_fraction,
        )
    # Sequential order: the randomness is in the samples themselves, so resuming is skipping the batches seen.
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.train_batch_size,
        shuffle=False,
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    task = make_task()
    model = task.model
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
        "best_score": None,
        "best_step": None,
        "validation": [],
        "log": [],
        "args": vars(args),
        "num_parameters": count_parameters(model),
        "hardware": hardware_description(accelerator.device),
    }
    if resume_path is not None:
        resume_path = load_first_good_checkpoint(accelerator, output_dir, resume_path, args.resume_from_checkpoint)
        state = load_trainer_state(resume_path) | {"args": vars(args)}
        logger.info("Resumed from %s at step %d", resume_path, state["global_step"])
    first_step = state["global_step"]
    batches_to_skip = first_step * args.gradient_accumulation_steps
    dataloader = (
        accelerator.skip_first_batches(train_dataloader, batches_to_skip) if batches_to_skip else train_dataloader
    )
    logger.info(
        "%s: %d parameters; %d steps of %d samples; device %s, precision %s",
        task.name,
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
            if args.channels_last:
                batch["blurred"] = batch["blurred"].contiguous(memory_format=torch.channels_last)
            loss = task.compute_loss(model, batch)
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
                metrics = task.validate(eval_model, accelerator.device) | {"step": step}
                if ema is not None:  # measure what the EMA buys: the raw weights on the same pairs
                    raw = task.validate(accelerator.unwrap_model(model), accelerator.device)
                    metrics[f"{task.score_key}_without_ema"] = raw[task.score_key]
                model.train()
                state["validation"].append(metrics)
                logger.info("step %d: %s", step, task.describe(metrics))
                score, best = metrics[task.score_key], state["best_score"]
                if best is None or (score > best if task.higher_is_better else score < best):
                    state["best_score"], state["best_step"] = score, step
                    eval_model.save_pretrained(output_dir / "best", safe_serialization=True)
            tick = time.perf_counter()
        if step % args.checkpointing_steps == 0 or is_last:
            state["train_seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            save_checkpoint(accelerator, output_dir, step, state, args.checkpoints_total_limit)
    progress.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        task.finalize(output_dir, state)
        if args.push_to_hub:
            push_folder(output_dir, args.hub_model_id, private=args.hub_private, revision=args.hub_revision)
    accelerator.end_training()
    return output_dir


def run_summary(state: dict, args: argparse.Namespace) -> dict:
    """How a finished run was trained, for ``eval_results.json`` and the model card."""
    return {
        "steps": state["global_step"],
        "max_train_steps": args.max_train_steps,
        "best_step": state["best_step"],
        "train_minutes": state["train_seconds"] / 60,
        "hardware": state["hardware"],
        "batch_size": args.train_batch_size,
        "crop_size": args.crop_size,
        "learning_rate": args.learning_rate,
        "ema_decay": args.ema_decay,
        "kernel_family": args.kernel_family,
        "bank16_fraction": args.bank16_fraction,
        "defocus_fraction": args.defocus_fraction,
        "defocus_radius_range": list(DEFOCUS_RADIUS_RANGE),
        "near_sharp_fraction": args.near_sharp_fraction,
        "near_sharp_sigma_range": list(NEAR_SHARP_SIGMA_RANGE),
        "context_probability": args.context_probability,
        "estimated_kernel_probability": args.estimated_kernel_probability,
        "kernel_estimates": Path(args.kernel_estimates).name if args.kernel_estimates else None,
        "noise_sigma": args.noise_sigma,
        "noise_probability": args.noise_probability,
        "jpeg_probability": args.jpeg_probability,
        "jpeg_quality_range": list(JPEG_QUALITY_RANGE),
        "seed": args.seed,
        "train_sources": [Path(s).name for s in (args.train_dirs or ["bsds500_train"])],
        "num_parameters": state["num_parameters"],
    }


def push_folder(folder: Path, repo_id: str, *, private: bool = False, revision: str | None = None) -> str:
    """Upload a finished run's model folder (not its checkpoints) to a Hub model repository; returns the URL."""
    from .push import push_model

    url = push_model(folder, repo_id, private=private, revision=revision)
    logger.info("Pushed to %s", url)
    return url
