"""Pieces every training script of the project shares: checkpoint folders, exact resume, EMA, timing.

The scripts in ``train/`` follow diffusers' and accelerate's examples: ``checkpoint-N`` folders written by
``Accelerator.save_state`` with a total limit, ``--resume_from_checkpoint latest`` continuing the same run (step,
optimizer, scheduler, RNG and data position), and a ``trainer_state.json`` with the history.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from torch import nn

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
