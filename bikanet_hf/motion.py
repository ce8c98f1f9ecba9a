"""Camera-shake motion blur: kernels for training and testing the paper's motion-blur extension.

* :func:`camera_shake_kernel` — a random camera-shake kernel: a trajectory with inertia, random acceleration and
  occasional jerks (after the trajectory model of Boracchi & Foi, "Modeling the performance of image restoration
  from motion blur", IEEE TIP 2012; our own implementation), rendered sub-pixel and centred;
* :func:`levin_kernels` — the 8 camera-shake kernels of Levin et al. (CVPR 2009), the protocol's motion track;
* :func:`linear_motion_kernel` — a straight-line motion of a given length and direction (what the motion flow of
  :func:`bikanet_hf.modeling_bikanet.motion_flow_from_kernel` summarises a kernel as);
* :func:`rotating_shake_kernels` and :func:`spatially_varying_degrade` — spatially varying blur: a shake that also
  turns the camera about its axis, so that every part of the photo has its own kernel (the synthetic test of
  ``benchmarks/motion_varying.py``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from .kernels import blur, load_kernels, pad_kernel, quantize
from .modeling_kernel_estimator import straight_motion_kernels

MOTION_KERNEL_SIZE = 31  # the motion model's kernel frame: room for the Levin kernels (up to 27×27) and a margin
MOTION_LENGTH_RANGE = (3.0, 25.0)  # trajectory extent (px) of the training family


def _render(points: np.ndarray, size: int) -> np.ndarray:
    """Render a trajectory (x, y offsets from the centre, one point per equal slice of the exposure) into a
    ``size×size`` kernel.

    Each segment between consecutive points gets the same exposure time, spread evenly along it at sub-pixel steps,
    and every sample is splatted bilinearly (which keeps its weight centre exactly).
    """
    starts, ends = points[:-1], points[1:]
    steps = np.maximum(1, np.ceil(4 * np.linalg.norm(ends - starts, axis=1))).astype(int)
    fractions = np.concatenate([(np.arange(n) + 0.5) / n for n in steps])
    segment = np.repeat(np.arange(len(steps)), steps)
    samples = starts[segment] + fractions[:, None] * (ends - starts)[segment]
    weights = np.repeat(1.0 / steps, steps)
    kernel = np.zeros((size, size))
    centre = size // 2
    x, y = samples[:, 0] + centre, samples[:, 1] + centre
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), weights * weight)
    return kernel / kernel.sum()


def _render_centre(points: np.ndarray) -> np.ndarray:
    """Centre of mass of the rendered trajectory: each segment's midpoint weighted by its (equal) exposure time."""
    return ((points[:-1] + points[1:]) / 2).mean(axis=0)


def _trajectory(rng: np.random.Generator, num_points: int, jerk_probability: float) -> np.ndarray:
    """A random 2-D camera path (num_points × 2): a direction with inertia turned by Gaussian acceleration, a pull
    back towards the start (the hand steadies the camera), with ``jerk_probability`` per point a large impulsive
    jerk, and a speed that wanders (a random walk of its logarithm)."""
    angle = rng.uniform(0, 2 * math.pi)
    velocity = np.array([math.cos(angle), math.sin(angle)])
    position = np.zeros(2)
    points = np.empty((num_points, 2))
    log_speed = 0.0
    anxiety = rng.uniform(0.05, 0.3)  # how shaky the hand is: scale of the random acceleration
    for t in range(num_points):
        points[t] = position
        acceleration = anxiety * rng.normal(size=2) - 0.05 * position / max(1.0, np.linalg.norm(position))
        if rng.random() < jerk_probability:
            acceleration += rng.uniform(0.3, 1.0) * rng.normal(size=2)
        velocity = velocity + acceleration
        velocity /= max(np.linalg.norm(velocity), 1e-8)
        # The speed wanders too: where the hand slows down, the exposure piles up (the bright dots of real kernels).
        log_speed = float(np.clip(log_speed + 0.3 * rng.normal(), -2.0, 0.5))
        position = position + math.exp(log_speed) * velocity
    return points


def camera_shake_kernel(
    rng: np.random.Generator,
    length: float | None = None,
    size: int = MOTION_KERNEL_SIZE,
    jerk_probability: float = 0.02,
) -> np.ndarray:
    """A random camera-shake kernel: ``size×size`` float64, non-negative, summing to 1, centre of mass at the centre.

    Args:
        rng: the random source (same state, same kernel).
        length: the trajectory's largest extent in pixels (its bounding box's longer side); default: drawn from
            :data:`MOTION_LENGTH_RANGE`. Must fit the frame: at most ``size - 3``.
        size: side of the (odd) kernel frame.
        jerk_probability: chance per trajectory point of a large impulsive jerk (a tremor); 0 gives smooth paths.
    """
    if size % 2 == 0 or size < 5:
        raise ValueError(f"size must be odd and at least 5, got {size}.")
    if length is None:
        length = rng.uniform(*MOTION_LENGTH_RANGE)
    if not 0.0 < length <= size - 3:
        raise ValueError(f"length must be in (0, {size - 3}] for a {size}×{size} kernel, got {length}.")
    points = _trajectory(rng, num_points=64, jerk_probability=jerk_probability)
    extent = np.ptp(points, axis=0).max()
    points = points * (length / max(extent, 1e-8))
    points -= _render_centre(points)
    # Centring on the mean can push one end beyond the frame when the path is lopsided: shrink it back inside.
    reach = np.abs(points).max()
    limit = size // 2 - 1
    if reach > limit:
        points *= limit / reach
    return _render(points, size)


def linear_motion_kernel(length: float, angle_deg: float, size: int = MOTION_KERNEL_SIZE) -> np.ndarray:
    """A straight motion of ``length`` pixels at ``angle_deg`` from the x axis (y downwards), centred; rendered as
    the motion estimator renders its answers (``modeling_kernel_estimator.straight_motion_kernels``)."""
    if length < 0:
        raise ValueError(f"length must be non-negative, got {length}.")
    if length > size - 3:
        raise ValueError(f"length must be at most {size - 3} for a {size}×{size} kernel, got {length}.")
    angle = math.radians(angle_deg)
    direction = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    covariance = (length**2 / 12) * torch.outer(direction, direction)
    return straight_motion_kernels(covariance[None], size)[0].numpy()


def levin_kernels(data_dir: str | os.PathLike | None = None, size: int = MOTION_KERNEL_SIZE) -> np.ndarray:
    """The 8 Levin et al. (2009) camera-shake kernels, each centred in a ``size×size`` frame (``8×size×size``).

    Read from ``kernels/Levin09.mat`` of the shared data folder (``data_dir``; default: the shared data), as they are:
    their centres of mass are up to a few pixels off the centre, so they shift the image as well as blur it.
    """
    from .corpus import default_data_dir

    folder = default_data_dir() if data_dir is None else data_dir
    kernels = load_kernels(os.path.join(folder, "kernels", "Levin09.mat"))
    return np.stack([pad_kernel(k, size) for k in kernels])


def rotating_shake_kernels(
    rng: np.random.Generator,
    shape: tuple[int, int],
    grid: tuple[int, int] = (3, 4),
    length: float | None = None,
    rotation_deg: float | None = None,
    size: int = MOTION_KERNEL_SIZE,
) -> np.ndarray:
    """The kernels of one camera shake that also turns the camera in its plane: ``rows×cols×size×size``, one per node
    of an evenly spaced ``grid`` over an ``H×W`` photo (corners included; see :func:`spatially_varying_degrade`).

    The translation follows :func:`camera_shake_kernel`'s trajectory (extent ``length`` px, default drawn from
    :data:`MOTION_LENGTH_RANGE` up to 12 px); the camera also turns by ``rotation_deg`` over the exposure (default
    U[0.3°, 1.0°], along a random monotone path), so a point at distance d from the centre moves by about
    ``d·rotation`` more, perpendicular to its radius: the kernels differ in length and direction across the photo,
    as real shake does (Whyte et al., "Non-uniform deblurring for shaken images", CVPR 2010). Each kernel is centred
    on its centre of mass (the rotation's mean displacement is left out) and shrunk to fit the frame if needed.
    """
    height, width = shape
    if length is None:
        length = rng.uniform(MOTION_LENGTH_RANGE[0], 12.0)
    if rotation_deg is None:
        rotation_deg = rng.uniform(0.3, 1.0)
    translation = _trajectory(rng, num_points=64, jerk_probability=0.02)
    translation *= length / max(np.ptp(translation, axis=0).max(), 1e-8)
    progress = np.cumsum(rng.uniform(0.2, 1.0, 64))
    angles = math.radians(rotation_deg) * ((progress - progress[0]) / (progress[-1] - progress[0]) - 0.5)
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    limit = size // 2 - 1
    kernels = np.empty((*grid, size, size))
    for i, y in enumerate(np.linspace(0, height - 1, grid[0])):
        for j, x in enumerate(np.linspace(0, width - 1, grid[1])):
            dx, dy = x - (width - 1) / 2, y - (height - 1) / 2
            points = translation + np.hstack([(cos - 1) * dx - sin * dy, sin * dx + (cos - 1) * dy])
            points = points - _render_centre(points)
            reach = np.abs(points).max()
            kernels[i, j] = _render(points * min(1.0, limit / max(reach, 1e-8)), size)
    return kernels


def _node_weights(positions, length: int, nodes: int) -> np.ndarray:
    """``nodes × len(positions)`` linear-interpolation weights of pixel positions (0 … ``length`` − 1) between
    ``nodes`` evenly spaced nodes (ends included); each column sums to 1."""
    positions = np.asarray(positions, dtype=np.float64)
    if nodes == 1:
        return np.ones((1, len(positions)))
    scaled = positions * (nodes - 1) / max(length - 1, 1)
    return np.clip(1 - np.abs(scaled[None, :] - np.arange(nodes)[:, None]), 0, None)


def kernel_at(kernels: np.ndarray, shape: tuple[int, int], y: float, x: float) -> np.ndarray:
    """The blur kernel at pixel (y, x) of an ``H×W`` photo blurred by :func:`spatially_varying_degrade` with
    ``kernels``: the nodes' kernels interpolated bilinearly."""
    rows, cols = kernels.shape[:2]
    wy, wx = _node_weights([y], shape[0], rows)[:, 0], _node_weights([x], shape[1], cols)[:, 0]
    kernel = np.einsum("i,j,ijkl->kl", wy, wx, kernels)
    return kernel / kernel.sum()


def spatially_varying_degrade(sharp: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """An ``H×W×3`` uint8 photo blurred by a kernel that varies across it, quantised to 8 bits.

    ``kernels`` (``rows×cols×k×k``) sit at evenly spaced nodes (corners included) and the blur between them is
    interpolated: ``b = Σ_ij k_ij ⊛ (w_ij · x)`` with bilinear weights ``w_ij`` (the "efficient filter flow" of
    Hirsch et al., CVPR 2010), each term blurred as the protocol blurs (true convolution, mirror padding). With one
    node it is the protocol's uniform blur.
    """
    height, width = sharp.shape[:2]
    kernels = np.array(kernels, dtype=np.float64)  # a writable copy (the caller's may be a broadcast view)
    rows, cols = kernels.shape[:2]
    wy, wx = _node_weights(np.arange(height), height, rows), _node_weights(np.arange(width), width, cols)
    x = torch.from_numpy(np.array(sharp, dtype=np.float64)).permute(2, 0, 1)[None]  # a copy: may be read-only
    out = torch.zeros_like(x)
    for i in range(rows):
        for j in range(cols):
            weight = torch.from_numpy(np.outer(wy[i], wx[j]))
            if weight.max() > 0:
                out += blur(x * weight, kernels[i, j])
    return quantize(out).to(torch.uint8)[0].permute(1, 2, 0).numpy()
