"""How wide a kernel should blind deblurring use? BIKAnet deblurs with the amortized estimate narrowed by the
estimator's ``deblur_covariance_scale``, ``deblur_sigma_offset`` and ``deblur_offset_floor``
(``BikanetKernelEstimator.deblur_covariance``: the covariance times one factor that makes its major axis √scale as
wide, less offset pixels but not below the floor); an over-wide kernel costs far more than a narrow one, and the
estimator reads some of a photo's own softness as blur.

Each pair is deblurred with the estimate's covariance times every factor α of ``--grid``; the gain of any
(scale, offset, floor) rule is then read off each pair's curve (a cubic through the grid) at the factor the rule
gives that pair, so that a grid of rules costs no more deblurring. Measured never on the benchmark sets: by default
(``SETS``) on wikiphotos10, which no model was trained on, and on bsds500_train, the photos the estimator was trained
on, each three ways. The protocol's kernels: wikiphotos10 with all 16 of the full track, 48 quick pairs of
bsds500_train. The ``mild`` track: each photo blurred as the protocol blurs (8-bit) by isotropic Gaussians of σ
``MILD_SIGMAS``, milder than any of bank16 (σ ≥ 1). The ``sharp`` track: each photo as it is, which deblurring
should leave alone; a sharp pair's "gain" is its PSNR against the photo less that of the photo deblurred with the
true kernel, a delta (≤ 0: the price of not knowing that it was sharp). The best rule is the best mean of the sets'
mean gains (each set weighs the same); it is checked again on Table 1. ``--cache`` keeps each pair's measurements
(JSON lines), so that an interrupted run resumes.

Usage: ``python benchmarks/kernel_scale.py [--sets wikiphotos10:full bsds500_train:mild:24 … --cache runs/ks.jsonl]``;
writes ``benchmarks/results/kernel_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from timing import machine, write_results

from bikanet_hf import corpus
from bikanet_hf.deblurring import load_model
from bikanet_hf.estimation import load_estimator
from bikanet_hf.image_io import list_images, load_rgb, to_tensor
from bikanet_hf.kernels import degrade, delta_kernel, gaussian_kernel
from bikanet_hf.metrics import psnr
from bikanet_hf.modeling_kernel_estimator import covariance_from_parameters, gaussian_kernels
from bikanet_hf.protocol import ProtocolPair, protocol_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from evaluate import model_deblur  # noqa: E402

GROUPS = {
    "isotropic (0-3)": [str(k) for k in range(0, 4)],
    "2.5 × 1.0 (4-9)": [str(k) for k in range(4, 10)],
    "4.0 × 1.5 (10-15)": [str(k) for k in range(10, 16)],
}
MILD_SIGMAS = (0.6, 0.8)  # the mild track's isotropic Gaussians (px)
SETS = [  # the default data: wikiphotos10 and the estimator's training photos, each blurred three ways
    "wikiphotos10:full",
    "bsds500_train:quick:48",
    "wikiphotos10:mild",
    "bsds500_train:mild:24",
    "wikiphotos10:sharp",
    "bsds500_train:sharp:24",
]


def set_pairs(spec: str, seed: int):
    """(kernel label, pair) for each pair of ``spec`` (SET:TRACK[:LIMIT]): the protocol's track (labelled by the
    kernel's id), or the mild or sharp track (module docstring; labelled "σ 0.6", …, "σ 0")."""
    name, track, *limit = spec.split(":")
    folder, limit = corpus.default_data_dir() / name, int(limit[0]) if limit else None
    if track not in ("mild", "sharp"):
        yield from ((str(pair.kernel_id), pair) for pair in protocol_pairs(folder, track, seed=seed, limit=limit))
        return
    for path in list_images(folder)[:limit]:
        sharp = load_rgb(path)
        if track == "sharp":
            delta = delta_kernel(17)
            yield "σ 0", ProtocolPair(path.name, sharp, sharp, delta, -1, 0.0, 0.0, 0.0)
            continue
        for sigma in MILD_SIGMAS:
            kernel = gaussian_kernel(sigma, sigma, 0.0)
            yield f"σ {sigma:g}", ProtocolPair(path.name, sharp, degrade(sharp, kernel), kernel, -1, sigma, sigma, 0.0)


def measure(estimator, model, pair, label: str, grid: list[float]) -> dict:
    """The pair's estimate (σ₁, σ₂ unscaled) and its gain over the blurred input deblurred at each factor of grid
    (for a sharp photo, over the photo deblurred with the true kernel, a delta)."""
    image = to_tensor(pair.blurred)
    estimate = estimator.estimate(image)
    blurred = psnr(pair.sharp, pair.blurred if pair.sigma_major else model_deblur(model, pair.blurred, pair.kernel))
    gains = {}
    for alpha in grid:
        kernel = gaussian_kernels(alpha * estimate.covariance, estimator.config.kernel_size)[0].double().numpy()
        gains[str(alpha)] = psnr(pair.sharp, model_deblur(model, pair.blurred, kernel, estimated=True)) - blurred
    return {
        "name": pair.name,
        "kernel": label,
        "sigma_major": float(estimate.sigma_major[0]),
        "sigma_minor": float(estimate.sigma_minor[0]),
        "gains": gains,
    }


def rule_factors(estimator, rows: list[dict], scale: float, offset: float, floor: float) -> np.ndarray:
    """The factor on each pair's covariance that the rule (scale, offset, floor) gives, from the estimator's own
    code."""
    config = estimator.config
    config.deblur_covariance_scale, config.deblur_sigma_offset, config.deblur_offset_floor = scale, offset, floor
    major = torch.tensor([r["sigma_major"] for r in rows], dtype=torch.float64)
    minor = torch.tensor([r["sigma_minor"] for r in rows], dtype=torch.float64)
    covariance = covariance_from_parameters(major, minor, torch.zeros_like(major))
    return (estimator.deblur_covariance(covariance)[:, 0, 0] / covariance[:, 0, 0]).numpy()


def read_cache(cache: Path | None) -> dict:
    """The pairs measured so far, by (set, track, image, kernel): the last line of each wins."""
    if cache is None or not cache.is_file():
        return {}
    rows = (json.loads(line) for line in cache.read_text().splitlines())
    return {(r["set"], r["track"], r["name"], str(r["kernel"])): r for r in rows}


def measured_rows(estimator, model, spec: str, grid: list[float], seed: int, cache: Path | None, done: dict):
    """The measurements of every pair of ``spec`` (SET:TRACK[:LIMIT]): from ``done`` (:func:`read_cache`) where it
    has them at the same factors, else measured and appended to ``cache``."""
    name, track, *_ = spec.split(":")
    rows = []
    for label, pair in set_pairs(spec, seed):
        row = done.get((name, track, pair.name, label))
        if row is None or sorted(row["gains"]) != sorted(map(str, grid)):
            row = {"set": name, "track": track, **measure(estimator, model, pair, label, grid)}
            if cache is not None:
                with cache.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=float, nargs="+", default=[0.6, 0.7, 0.8, 0.9, 1.0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.8, 0.85, 0.9, 0.95, 1.0])
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2])
    parser.add_argument(
        "--sets",
        nargs="+",
        default=SETS,
        help=f"SET:TRACK[:LIMIT] of the data (default: {' '.join(SETS)})",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the random track (default: 7)")
    parser.add_argument("--cache", default=None, help="JSON-lines file of measured pairs, read and appended")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/kernel_scale")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    estimator, model = load_estimator(), load_model()
    config = estimator.config
    bundled = (config.deblur_covariance_scale, config.deblur_sigma_offset, config.deblur_offset_floor)
    cache = Path(args.cache) if args.cache else None
    done = read_cache(cache)
    per_set = {spec: measured_rows(estimator, model, spec, args.grid, args.seed, cache, done) for spec in args.sets}
    rows = [row for spec_rows in per_set.values() for row in spec_rows]
    grid = np.array(args.grid)
    grid_gains = np.array([[r["gains"][str(a)] for a in args.grid] for r in rows])
    curves = [np.polyfit(grid, g, min(3, len(grid) - 1)) for g in grid_gains]
    majors = np.array([r["sigma_major"] for r in rows])
    sets = np.array([spec for spec, spec_rows in per_set.items() for _ in spec_rows])

    def gains(scale: float, offset: float, floor: float) -> np.ndarray:
        factors = np.clip(rule_factors(estimator, rows, scale, offset, floor), grid.min(), grid.max())
        return np.array([np.polyval(c, f) for c, f in zip(curves, factors, strict=True)])

    def score(values: np.ndarray, inside: np.ndarray | None = None) -> float:
        """The mean over sets of each set's mean gain (of the pairs ``inside``)."""
        inside = np.ones(len(values), bool) if inside is None else inside
        means = [values[(sets == spec) & inside].mean() for spec in per_set if ((sets == spec) & inside).any()]
        return float(np.mean(means))

    table = {(s, o, f): gains(s, o, f) for s in args.scales for o in args.offsets for f in args.floors}
    best = max(table, key=lambda k: score(table[k]))
    factors = rule_factors(estimator, rows, *best)
    outside = int(((factors < grid.min()) | (factors > grid.max())).sum())
    kernels = np.array([str(r["kernel"]) for r in rows])
    held_out = {}
    for group, ids in GROUPS.items():  # the rule fitted without a kernel group, scored on it
        inside = np.isin(kernels, list(ids))
        if inside.any() and not inside.all():
            fitted = max(table, key=lambda k: score(table[k], ~inside))
            held_out[group] = {
                "pairs": int(inside.sum()),
                "rule_fitted_on_the_rest": list(fitted),
                "its_gain": score(table[fitted], inside),
                "best_gain": max(score(t, inside) for t in table.values()),
                "bundled_gain": score(table[bundled], inside) if bundled in table else None,
            }
    per_kernel = {}
    for spec in per_set:
        for k in sorted(set(kernels[sets == spec].tolist()), key=lambda k: (len(k), k)):
            chosen = (sets == spec) & (kernels == k)
            per_kernel[f"{spec} {k}"] = {
                "estimated_sigma_major": float(majors[chosen].mean()),
                "estimated_sigma_major_5_95": np.percentile(majors[chosen], [5, 95]).tolist(),
                **{f"α {a}": float(grid_gains[chosen, i].mean()) for i, a in enumerate(args.grid)},
                "best_rule": float(table[best][chosen].mean()),
            }
    head = " | ".join(f"offset {o}" for o in args.offsets)
    lines = [
        f"Blind BIKAnet on {', '.join(f'{spec} ({(sets == spec).sum()} pairs)' for spec in per_set)} deblurring "
        "with the amortized estimate narrowed by a rule (scale, offset, floor): the covariance times the factor that "
        "makes its major axis √scale as wide, less offset px but not below the floor. Each pair deblurred at the "
        f"factors {', '.join(map(str, args.grid))} and read between them. Score: the mean over the sets of each "
        f"set's mean gain over the blurred input (dB; for a sharp set, over the photo deblurred with a delta). "
        f"Best: scale {best[0]}, offset {best[1]}, floor {best[2]} "
        f"({score(table[best]):+.3f} dB; its factor fell outside the grid, and was read at its end, for {outside} "
        f"pairs); the bundled estimator's rule: scale {bundled[0]}, offset {bundled[1]}, floor {bundled[2]}"
        + (f" ({score(table[bundled]):+.3f} dB).\n" if bundled in table else ".\n"),
        f"Score at floor {best[2]}:\n",
        f"| scale | {head} |",
        "|---" * (len(args.offsets) + 1) + "|",
        *(
            f"| {s} | " + " | ".join(f"{score(table[(s, o, best[2])]):+.3f}" for o in args.offsets) + " |"
            for s in args.scales
        ),
        "",
        "The best rule at each floor, its score and each set's mean gain (dB).\n",
        "| floor | best (scale, offset) | score | " + " | ".join(per_set) + " |",
        "|---" * (len(per_set) + 3) + "|",
    ]
    for floor in args.floors:
        at = max((k for k in table if k[2] == floor), key=lambda k: score(table[k]))
        lines.append(
            f"| {floor} | {at[0]}, {at[1]} | {score(table[at]):+.3f} | "
            + " | ".join(f"{table[at][sets == spec].mean():+.3f}" for spec in per_set)
            + " |"
        )
    lines += [
        "",
        "Each set alone (its mean gain, dB): the best rule, the bundled one, the best constant factor (offset 0), and "
        "the best rule for that set alone.\n",
        "| set | best rule | bundled rule | best constant | best for the set |",
        "|---|---|---|---|---|",
    ]
    report_sets = {}
    for spec in per_set:
        inside = sets == spec
        constants = (k for k in table if k[1] == 0 and k[2] == args.floors[0])  # the floor acts on offsets only
        constant = max(constants, key=lambda k: table[k][inside].mean(), default=None)
        own = max(table, key=lambda k: table[k][inside].mean())
        report_sets[spec] = {
            "best_rule": float(table[best][inside].mean()),
            "bundled_rule": float(table[bundled][inside].mean()) if bundled in table else None,
            "best_constant": list(constant) if constant else None,
            "best_constant_gain": float(table[constant][inside].mean()) if constant else None,
            "own_best": list(own),
            "own_best_gain": float(table[own][inside].mean()),
        }
        const = f"{table[constant][inside].mean():+.3f} (scale {constant[0]})" if constant else "—"
        own_bundled = f"{table[bundled][inside].mean():+.3f}" if bundled in table else "—"
        lines.append(
            f"| {spec} | {table[best][inside].mean():+.3f} | {own_bundled} | {const} | "
            f"{table[own][inside].mean():+.3f} (scale {own[0]}, offset {own[1]}, floor {own[2]}) |"
        )
    lines += [
        "",
        "Held out: the best rule on the other kernel groups, scored on this one (against the best rule for it).\n",
        "| kernels | pairs | rule fitted on the rest | its gain | best | bundled rule |",
        "|---|---|---|---|---|---|",
        *(
            f"| {g} | {h['pairs']} | {h['rule_fitted_on_the_rest']} | {h['its_gain']:+.3f} | {h['best_gain']:+.3f} | "
            + (f"{h['bundled_gain']:+.3f} |" if h["bundled_gain"] is not None else "— |")
            for g, h in held_out.items()
        ),
        "",
        "Per kernel: the estimate's mean σ₁ (and its 5th–95th percentiles) and the gain at each constant factor α, "
        "and with the best rule.\n",
        "| set, kernel | estimated σ₁ | 5–95% | " + " | ".join(f"α {a}" for a in grid) + " | best rule |",
        "|---" * (len(grid) + 4) + "|",
        *(
            f"| {k} | {v['estimated_sigma_major']:.2f} | "
            + "–".join(f"{x:.2f}" for x in v["estimated_sigma_major_5_95"])
            + " | "
            + " | ".join(f"{v[f'α {a}']:+.2f}" for a in grid)
            + f" | {v['best_rule']:+.2f} |"
            for k, v in per_kernel.items()
        ),
    ]
    report = {
        "sets": report_sets,
        "pairs": len(rows),
        "grid": args.grid,
        "rules": {f"{s} {o} {f}": score(t) for (s, o, f), t in table.items()},
        "best": {"scale": best[0], "offset": best[1], "floor": best[2], "score": score(table[best])},
        "outside_grid": outside,
        "bundled": {"scale": bundled[0], "offset": bundled[1], "floor": bundled[2]},
        "held_out": held_out,
        "per_kernel": per_kernel,
        **machine(args.threads),
    }
    write_results(args.out, report, lines)


if __name__ == "__main__":
    main()
