"""Blur that varies across the photo: one kernel per tile (``deblur(..., spatially_varying=True)``) against one per
photo.

Rows (large photos, so that a photo spans several tiles):

* ``wikiphotos10/turning shake`` — the first ``--limit`` photos of wikiphotos10, each blurred by a camera shake that
  also turns the camera in its plane (:func:`bikanet_hf.motion.rotating_shake_kernels`: kernels on a 3×4 grid of
  nodes, interpolated between them, :func:`bikanet_hf.motion.spatially_varying_degrade`), 8-bit; the motion model;
* ``wikiphotos10/tilted focus`` — the same photos with Gaussian blur whose width grows across the photo (σ from
  U[0.6, 1.2] to U[2.5, 4.0] px along a random direction, σ₂ = 0.7 σ₁, one random angle: a tilted plane of focus),
  same grid; the main (Gaussian) model, blind with the default ``blur_type="auto"`` (which also looks for defocus
  disks: in the whole photo, or with ``spatially_varying`` in each tile; a false one would show here);
* ``gopro/real`` — the two real GoPro pairs (their blur is whatever the scene had), motion model, blind only.

Columns: the blurred input; with the true kernels (synthetic rows only), ``true, one kernel`` (the kernel at the
photo's centre for the whole photo) and ``true, per tile`` (the kernel at each tile's centre, 384-px tiles); blind,
``blind, one kernel`` (``deblur(image)``, the default) and ``blind, per tile N`` (``spatially_varying=True`` with
``tile_size=N``, overlap N/4). PSNR / SSIM on the 8-bit RGB result, full frame.

Usage: ``python benchmarks/motion_varying.py [--limit 6] [--tiles 512 384] [--rows ...]``
Writes ``benchmarks/results/motion_varying.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.deblurring import deblur, load_model, restore
from bikanet_hf.image_io import load_rgb
from bikanet_hf.kernels import gaussian_kernel
from bikanet_hf.modeling_bikanet import tile_windows
from bikanet_hf.motion import kernel_at, rotating_shake_kernels, spatially_varying_degrade

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion import gopro_rows, measure, scores  # noqa: E402
from quality import markdown  # noqa: E402
from timing import machine, write_results  # noqa: E402

GRID = (3, 4)
TRUE_TILE = 384
BLIND_TILES = (512, 384)
ROWS = ("turning shake", "tilted focus", "gopro")


def tilted_focus_kernels(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Gaussian kernels (17×17) on the ``GRID`` nodes of an ``H×W`` photo, widening along a random direction."""
    near, far = rng.uniform(0.6, 1.2), rng.uniform(2.5, 4.0)
    direction, theta = rng.uniform(0, 2 * np.pi), rng.uniform(0, 180)
    kernels = np.empty((*GRID, 17, 17))
    for i, y in enumerate(np.linspace(-0.5, 0.5, GRID[0])):
        for j, x in enumerate(np.linspace(-0.5, 0.5, GRID[1])):
            # position along the direction, in [0, 1] over the photo's corners
            t = (x * np.cos(direction) * shape[1] + y * np.sin(direction) * shape[0]) / (
                0.5 * (abs(np.cos(direction)) * shape[1] + abs(np.sin(direction)) * shape[0])
            )
            sigma = near + (far - near) * (t + 1) / 2
            kernels[i, j] = gaussian_kernel(sigma, 0.7 * sigma, theta)
    return kernels


def true_tile_kernels(kernels: np.ndarray, shape: tuple[int, int], tile: int) -> np.ndarray:
    """The true kernel at the centre of each tile of ``tile_windows`` (overlap tile/4)."""
    windows = tile_windows(*shape, tile, tile // 4)
    return np.stack([kernel_at(kernels, shape, (t + b - 1) / 2, (l + r - 1) / 2) for t, b, l, r in windows])


def blind_columns(
    model, blurred: np.ndarray, blur_type: str, tiles: list[int], seconds: dict[str, list]
) -> dict[str, np.ndarray]:
    """The blind results, one kernel and per tile of each side in ``tiles``; each one's estimate + deblur time
    appended to ``seconds``."""
    options = {"one kernel": {}}
    options |= {f"per tile {t}": {"spatially_varying": True, "tile_size": t, "tile_overlap": t // 4} for t in tiles}
    outputs = {}
    for name, extra in options.items():
        result = deblur(blurred, model=model, blur_type=blur_type, **extra)
        outputs[f"blind, {name}"] = np.asarray(result.image)
        seconds.setdefault(f"blind, {name}", []).append(result.seconds["total"])
    return outputs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=6, help="wikiphotos10 photos per synthetic row (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="photo i's blur is drawn from default_rng([seed, i])")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument(
        "--tiles", type=int, nargs="+", default=list(BLIND_TILES), help="tile sides of the blind per-tile columns"
    )
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), help="which rows to run (default: all)")
    p.add_argument("--out", default="benchmarks/results/motion_varying", help="output path prefix")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    data = corpus.default_data_dir()
    models = {"motion": load_model(blur_type="motion"), "gaussian": load_model()}
    tracks = {  # the model, the blind blur type and the kernels
        "turning shake": ("motion", "motion", rotating_shake_kernels),
        "tilted focus": ("gaussian", "auto", tilted_focus_kernels),
    }
    results, seconds = {}, {}
    for track, (model_type, blur_type, make_kernels) in tracks.items():
        if track not in args.rows:
            continue
        model, rows = models[model_type], {"blurred": []}
        for i, path in enumerate(sorted((data / "wikiphotos10").glob("*.png"))[: args.limit]):
            sharp = load_rgb(path)
            shape = sharp.shape[:2]
            kernels = make_kernels(np.random.default_rng([args.seed, i]), shape)
            blurred = spatially_varying_degrade(sharp, kernels)
            centre = kernel_at(kernels, shape, (shape[0] - 1) / 2, (shape[1] - 1) / 2)
            outputs = {
                "true, one kernel": restore(model, blurred, centre)[0],
                "true, per tile": restore(  # with the tile context deblur's per tile takes
                    model,
                    blurred,
                    true_tile_kernels(kernels, shape, TRUE_TILE),
                    tile_size=TRUE_TILE,
                    tile_overlap=TRUE_TILE // 4,
                )[0],
                **blind_columns(model, blurred, blur_type, args.tiles, seconds.setdefault(track, {})),
            }
            rows["blurred"].append(measure(sharp, blurred))
            for name, out in outputs.items():
                rows.setdefault(name, []).append(measure(sharp, out))
            print(f"{track} {i + 1}/{args.limit} {path.name}", flush=True)
        results[f"wikiphotos10/{track}"] = scores(rows)
    if "gopro" in args.rows:
        real_seconds = seconds.setdefault("gopro", {})
        results["gopro/real"] = scores(
            gopro_rows(
                data, lambda blurred: blind_columns(models["motion"], blurred, "motion", args.tiles, real_seconds)
            )
        )
    mean_seconds = {track: {name: float(np.mean(v)) for name, v in rows.items()} for track, rows in seconds.items()}
    columns = ["true, one kernel", "true, per tile", "blind, one kernel"]
    columns += [f"blind, per tile {t}" for t in args.tiles]
    report = {
        "what": "one kernel per photo vs one per tile, on blur that varies across the photo (see the script)",
        "results": results,
        "blind_seconds_per_photo": mean_seconds,
        "grid": GRID,
        "seed": args.seed,
        "machine": machine(args.threads),
        "seconds": time.time() - start,
    }
    legend = (
        "PSNR (dB) / SSIM (ΔPSNR over the blurred input). Synthetic rows: wikiphotos10 photos blurred by kernels "
        f"that vary across the photo ({GRID[0]}×{GRID[1]} nodes, interpolated): `turning shake` (camera shake with "
        "in-plane rotation, the motion model) and `tilted focus` (Gaussian blur widening across the photo, the "
        "main model). `true, one kernel`: the true kernel at the photo's centre for all of it; `true, per tile`: "
        f"the true kernel at each {TRUE_TILE}-px tile's centre; `blind, one kernel`: `deblur(image)`; "
        "`blind, per tile N`: `deblur(image, spatially_varying=True, tile_size=N)`. `gopro/real`: two real pairs, "
        "motion model, blind only."
    )
    timing = [
        f"Blind, seconds per photo (estimate + deblur, CPU {args.threads} threads): "
        + "; ".join(
            f"{track}: " + ", ".join(f"{n[7:]} {v:.1f}" for n, v in row.items()) for track, row in mean_seconds.items()
        )
    ]
    write_results(args.out, report, [legend, "", markdown(results, columns), "", *timing])


if __name__ == "__main__":
    main()
