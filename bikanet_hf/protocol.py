"""The benchmark protocol's test pairs (``shared/PROTOCOL.md``, "Pairs"), made in one place.

* ``quick``: the i-th image of a folder, sorted by file name, gets bank16 kernel ``i mod 16``;
* ``full``: every image with every bank16 kernel;
* ``random``: image i gets a kernel of the random family drawn from ``numpy.random.default_rng(seed + i)``;
* ``motion`` (the motion-blur extension): image i gets Levin et al.'s camera-shake kernel ``i mod 8``, centred in a
  31×31 frame.

Each pair is blurred by :func:`bikanet_hf.kernels.degrade` (true convolution, mirror padding, optional noise
σₙ = 2.55 with a fixed seed, 8-bit quantisation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .image_io import list_images, load_rgb
from .kernels import BANK16_PARAMS, bank16, degrade, kernel_spread, random_track_kernel
from .motion import levin_kernels

TRACKS = ("quick", "full", "random", "motion")
NOISE_SIGMA = 2.55  # the protocol's noise track, on the 0–255 scale


@dataclass
class ProtocolPair:
    """One benchmark pair: a sharp image, the kernel that blurred it, and the 8-bit blurred image."""

    name: str  # file name of the sharp image
    sharp: np.ndarray  # H×W×3 uint8
    blurred: np.ndarray  # H×W×3 uint8
    kernel: np.ndarray  # 17×17 float64 (31×31 on the motion track), sums to 1
    kernel_id: int  # bank16 index, Levin kernel index on the motion track, or -1 for the random track
    sigma_major: float
    sigma_minor: float
    theta: float


def protocol_pairs(
    folder: str | os.PathLike,
    track: str = "quick",
    seed: int = 0,
    noise: bool = False,
    limit: int | None = None,
) -> Iterator[ProtocolPair]:
    """Yield the protocol's pairs for the images of ``folder`` (sorted by name; the first ``limit`` only).

    ``seed`` seeds the random track's kernels and, with ``noise=True``, the noise (image i uses ``seed + i``).
    """
    if track not in TRACKS:
        raise ValueError(f"Unknown track {track!r}; choose one of {', '.join(TRACKS)}.")
    paths = list_images(folder)[:limit]
    if not paths:
        raise ValueError(f"{folder}: no images found.")
    bank = bank16()
    levin = levin_kernels() if track == "motion" else None
    for i, path in enumerate(paths):
        sharp = load_rgb(path)
        if track == "quick":
            jobs = [(i % 16, bank[i % 16], BANK16_PARAMS[i % 16])]
        elif track == "full":
            jobs = [(j, bank[j], BANK16_PARAMS[j]) for j in range(16)]
        elif track == "motion":
            jobs = [(i % len(levin), levin[i % len(levin)], kernel_spread(levin[i % len(levin)]))]
        else:
            kernel, params = random_track_kernel(seed, i)
            jobs = [(-1, kernel, params)]
        for kernel_id, kernel, (s1, s2, theta) in jobs:
            generator = torch.Generator().manual_seed(seed + i) if noise else None
            blurred = degrade(sharp, kernel, noise_sigma=NOISE_SIGMA if noise else 0.0, generator=generator)
            yield ProtocolPair(Path(path).name, sharp, blurred, kernel, kernel_id, s1, s2, theta)
