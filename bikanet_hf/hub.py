"""Model cards for checkpoints: YAML metadata plus a body, with every number read from ``eval_results.json``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .image_io import JPEG_QUALITY_RANGE
from .kernels import DEFOCUS_RADIUS_RANGE, NEAR_SHARP_SIGMA_RANGE
from .modeling_bikanet import JPEG_NOISE_LEVEL

# The code is Apache-2.0, but the weights are trained on BSDS500, whose licence allows non-commercial research
# use only; the Hub's "other" licence with a name says so in the metadata.
LICENSE = "other"
LICENSE_NAME = "research-only-weights"


def _recorded_range(training: dict, key: str) -> str:
    """A range a run recorded in its summary (``low–high``); older runs recorded none, and were trained with the
    ranges this package still uses."""
    defaults = {
        "defocus_radius_range": DEFOCUS_RADIUS_RANGE,
        "near_sharp_sigma_range": NEAR_SHARP_SIGMA_RANGE,
        "jpeg_quality_range": JPEG_QUALITY_RANGE,
    }
    low, high = training.get(key) or defaults[key]
    return f"{low:g}–{high:g}"


def _result(dataset_type: str, dataset_name: str, scores: dict) -> dict:
    return {
        "task": {"type": "image-to-image", "name": "Non-blind image deblurring (true kernel)"},
        "dataset": {"type": dataset_type, "name": dataset_name},
        "metrics": [
            {"type": "psnr", "name": "PSNR (dB)", "value": round(scores["psnr"], 3)},
            {"type": "ssim", "name": "SSIM", "value": round(scores["ssim"], 4)},
            {"type": "psnr", "name": "PSNR gain over the blurred input (dB)", "value": round(scores["delta_psnr"], 3)},
        ],
    }


def _model_index(name: str, validation: dict, evaluation: dict | None, model_key: str | None) -> list[dict]:
    """One result per (set, track) of an ``train/evaluate.py`` report, else the training's own validation."""
    if evaluation is None:
        n = validation["num_pairs"]
        results = [_result("bsds500_val", f"BSDS500 val, protocol quick pairs (first {n} images)", validation)]
    else:
        results = [
            _result(
                set_name, f"{set_name}, protocol {track} pairs ({cols[model_key]['num_pairs']} pairs)", cols[model_key]
            )
            for set_name, tracks in evaluation["results"].items()
            for track, cols in tracks.items()
        ]
    return [{"name": name, "results": results}]


def _benchmark_table(evaluation: dict, model_key: str) -> str:
    first_row = next(iter(next(iter(evaluation["results"].values())).values()))
    columns = [c for c in ("blurred", "wiener", "wiener-frontend") if c in first_row] + [model_key]
    columns += [f"{model_key}+blind"] if f"{model_key}+blind" in first_row else []
    lines = ["| set | track | pairs | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 3)]
    for set_name, tracks in evaluation["results"].items():
        for track, cols in tracks.items():
            cells = [f"{cols[c]['psnr']:.2f} / {cols[c]['ssim']:.4f}" for c in columns]
            lines.append(f"| {set_name} | {track} | {cols[model_key]['num_pairs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# What differs in the card of a model trained on camera-shake blur (the paper's motion-blur extension).
_FAMILY_TEXT = {
    "gaussian": {
        "design": "Kernel-adaptive AE blocks whose AdaIN scale and bias come from a mapping\nnetwork fed the kernel",
        "validation": "Protocol quick pairs of BSDS500 val (first {n} images, image i blurred with bank16 kernel i "
        "mod 16, 8-bit)",
        "kernels": "bank16 with probability {bank16_fraction}, else the protocol's random\n  Gaussian family "
        "σ ∈ [0.6, 4.0], any angle",
        "kernel_import": "gaussian_kernel",
        "kernel_call": "gaussian_kernel(2.5, 1.0, 30.0)",
        "limitation": "Trained on Gaussian-like blur up to σ = 4 px in a 17×17 kernel; strong camera-shake motion "
        "blur is out of scope\n  (the motion model is).",
    },
    "motion": {
        "design": "The paper's motion-blur extension: a per-pixel motion flow concatenated to the\ninput instead of "
        "AdaIN, AE blocks",
        "validation": "Protocol motion track of BSDS500 val (first {n} images, image i blurred with Levin et al.'s "
        "camera-shake kernel i mod 8, 8-bit)",
        "kernels": "a random camera-shake trajectory up to 25 px long, rendered\n  sub-pixel in a 31×31 frame",
        "kernel_import": "linear_motion_kernel",
        "kernel_call": "linear_motion_kernel(12.0, 30.0)",
        "limitation": "Trained on uniform camera-shake blur (one kernel per image) up to 25 px; blur that varies "
        "across\n  the image is only handled through a per-pixel flow the caller supplies.",
    },
}


def model_card(
    results: dict, name: str = "bikanet", evaluation: dict | None = None, model_key: str | None = None
) -> str:
    """The README.md of a BIKAnet checkpoint folder, from the ``eval_results.json`` written by training and,
    when given, a ``train/evaluate.py`` report (``evaluation``) in which this model is the column ``model_key``."""
    validation, training = results["validation_quick"], results["training"]
    text = _FAMILY_TEXT[training.get("kernel_family", "gaussian")]
    started_from = f"\n- Started from the weights of {training['init_from']}." if training.get("init_from") else ""
    if training.get("max_train_steps", training["steps"]) > training["steps"]:
        started_from += (
            f"\n- Stopped at step {training['steps']} of a {training['max_train_steps']}-step cosine schedule, before "
            "the learning rate had decayed."
        )
    estimated = training.get("estimated_kernel_probability", 0.0)
    motion = training.get("kernel_family") == "motion"
    # Older motion cards recorded the file as "shake_estimates".
    estimates_file = training.get("kernel_estimates") or training.get("shake_estimates")
    estimated_from = (
        f"from whole photos: these crops are cut from photos blurred whole with the kernels of "
        f"{estimates_file} (train/precompute_kernel_estimates.py), each given the estimate made from its "
        "whole blurred photo, and keep their real surroundings"
        if estimates_file
        else "from each blurred crop"
    )
    estimator = "edge-prediction" if motion else "amortized"
    given_kernel = (
        f"\n  {estimated:.0%} of the crops given the blind ({estimator}) estimate of their kernel instead of the "
        f"true one{' (aligned to it by a whole-pixel shift)' if motion else ''}, so that the model learns to deblur "
        f"with its estimator's errors; estimated {estimated_from};"
        if estimated
        else ""
    )
    blind_row = ""
    if "psnr_estimated_kernel" in validation:
        blind_row = (
            f"\n| this model, kernel estimated blind ({estimator.replace('-', ' ')}) | "
            f"{validation['psnr_estimated_kernel']:.2f} | {validation['ssim_estimated_kernel']:.4f} |"
        )
    if "aligned_psnr_estimated_kernel" in validation:
        blind_row += (
            "\n| the same, PSNR after the best shift of up to 6 px | "
            f"{validation['aligned_psnr_estimated_kernel']:.2f} | – |"
        )
    if "psnr_noisy" in validation:
        blind_row += (
            f"\n| noise track (σ = 2.55): blurred input | {validation['blurred_psnr_noisy']:.2f} | – |"
            f"\n| noise track: this model, true kernel | {validation['psnr_noisy']:.2f} | – |"
        )
    if "psnr_jpeg" in validation:
        blind_row += (
            f"\n| JPEG track (the pairs saved as JPEG q90): blurred input | {validation['blurred_psnr_jpeg']:.2f} "
            "| – |"
            f"\n| JPEG track: this model, true kernel | {validation['psnr_jpeg']:.2f} | – |"
        )
    # Kernels besides the Gaussians (older runs recorded neither share)
    defocus, near_sharp = training.get("defocus_fraction") or 0.0, training.get("near_sharp_fraction") or 0.0
    radii, sigmas = (
        _recorded_range(training, "defocus_radius_range"),
        _recorded_range(training, "near_sharp_sigma_range"),
    )
    extras = (f"; a defocus disk of radius {radii} px instead for {defocus:.0%} of them" if defocus else "") + (
        f"; a nearly sharp Gaussian (σ {sigmas}) for {near_sharp:.0%} of the others" if near_sharp else ""
    )
    sigma, fraction = training["noise_sigma"], training.get("noise_probability")  # older runs recorded no fraction
    if not sigma or fraction == 0:
        noise = "no noise"
    elif fraction is None:
        noise = f"noise σ up to {sigma:g}"
    else:
        noise = f"{fraction:.0%} of them with white Gaussian noise of σ uniform in [0, {sigma:g}] (0–255 scale)"
    jpeg = training.get("jpeg_probability") or 0.0  # older runs recorded none
    if jpeg:
        noise += (
            f", quantised to 8 bits, then {jpeg:.0%} of them saved as a JPEG of quality "
            f"{_recorded_range(training, 'jpeg_quality_range')} and read back"
        )
        floor = training.get("jpeg_noise_level", JPEG_NOISE_LEVEL)  # older runs recorded none
        if floor:
            noise += (
                f" (the model told at least {floor:g} grey levels of noise for those, as `bikanet_hf.deblur` tells "
                "JPEG files)"
            )
    else:
        noise += ", quantised to 8 bits"
    flag_text = (
        "\nIt also reads whether the kernel is a blind estimate (`kernel_is_estimate=True`, which the pipeline and\n"
        "`bikanet_hf.deblur` pass when they estimate it) and then trusts it less."
        if training.get("kernel_estimate_input")
        else ""
    ) + (
        "\nIt measures the photo's noise level itself (`estimate_noise_level`; or takes `noise_level=` from the\n"
        "caller) and reads it as one more input channel, so that it can treat clean and noisy photos differently."
        if training.get("noise_level_input")
        else ""
    )
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "image-to-image",
        "license": LICENSE,
        "license_name": LICENSE_NAME,
        "tags": ["image-deblurring", "deblurring", "image-restoration", "bikanet", "non-blind"],
        "metrics": ["psnr", "ssim"],
        "model-index": _model_index(name, validation, evaluation, model_key),
    }
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    n = validation["num_pairs"]
    benchmark = ""
    if evaluation is not None:
        wiener = evaluation.get("wiener", {}).get("balance")
        blind = (
            f"\n`{model_key}+blind`: this model with the kernel estimated from the blurred photo by the kernel "
            f"estimator\n`{evaluation['estimator']}` instead."
            if evaluation.get("estimator")
            else ""
        )
        benchmark = f"""
## Benchmark (`train/evaluate.py`, shared/PROTOCOL.md)

PSNR (dB) / SSIM on 8-bit images, the true kernel given to every method. `wiener`: skimage's Wiener filter, balance
{wiener} tuned on bsds500_val quick; `wiener-frontend`: this model's own Wiener front-end alone.{blind}

{_benchmark_table(evaluation, model_key)}
"""
    return f"""---
{header}---

# {name}: BIKAnet (Blind Image Kernel-Adaptive network)

Removes a known blur kernel from a photo. {text["design"]}, a long-term skip from the head into every
block, and a Wiener-deconvolution front-end (the BIKAnet-HF README describes the design). The kernel must be
given: this model is non-blind.{flag_text}
{benchmark}
## Validation during training

{text["validation"].format(n=n)}, the true
kernel given:

| | PSNR (dB) | SSIM |
|---|---|---|
| blurred input | {validation["blurred_psnr"]:.2f} | {validation["blurred_ssim"]:.4f} |
| this model | {validation["psnr"]:.2f} | {validation["ssim"]:.4f} |
| gain | {validation["delta_psnr"]:+.2f} | {validation["ssim"] - validation["blurred_ssim"]:+.4f} |{blind_row}

## Usage

Blind (the kernel is estimated by the kernel estimator in `kernel_estimator/`, when the folder has one) or with a
known kernel, through the `image-deblurring` pipeline (its code travels with the model) or `bikanet_hf.deblur`:

```python
from transformers import pipeline

pipe = pipeline("image-deblurring", model="path/or/hub-id", trust_remote_code=True)
result = pipe("blurred.jpg")  # {{"image": PIL image, "kernel": 2-D array}}; pipe(image, kernel=k) for a known kernel
```

The model alone, with a kernel:

```python
import torch
from bikanet_hf import BikanetForImageDeblurring, BikanetImageProcessor, {text["kernel_import"]}

model = BikanetForImageDeblurring.from_pretrained("path/or/hub-id").eval()
processor = BikanetImageProcessor.from_pretrained("path/or/hub-id")
inputs = processor(image, return_tensors="pt")
kernel = torch.from_numpy({text["kernel_call"]}).float()[None]
with torch.no_grad():
    out = model(pixel_values=inputs["pixel_values"], kernel=kernel)
sharp = processor.postprocess(out.reconstruction, inputs["original_sizes"])[0]
```

## Training

- Data: on-the-fly crops ({training["crop_size"]}×{training["crop_size"]}) of {", ".join(training["train_sources"])},
  each blurred with a fresh kernel ({text["kernels"].format(bank16_fraction=training["bank16_fraction"])}{extras}),
  {noise};{given_kernel}
  {training["context_probability"]:.0%} of the crops blurred with their real surroundings, the others with mirror
  padding as the protocol blurs whole images.
- Optimiser: Adam, peak learning rate {training["learning_rate"]:g}, warm-up then cosine decay,
  {training["loss"]} loss, gradient clipping 1.0, EMA decay {training["ema_decay"]:g} (0 = off);
  batch {training["batch_size"]}; seed {training["seed"]}.
- Steps: {training["steps"]} (best validation at step {training["best_step"]}); {training["train_minutes"]:.1f} minutes
  on {training["hardware"]}; {training["num_parameters"]:,} parameters.{started_from}

## Limitations

- {text["limitation"]}
- Needs the kernel: with an estimated kernel the result is only as good as the estimate.
- Trained on BSDS500 (non-commercial research licence); the weights are shared for research use.
"""


def write_model_card(
    folder: str | Path,
    results: dict | None = None,
    name: str | None = None,
    evaluation: str | Path | None = None,
    model_key: str | None = None,
) -> Path:
    """Write ``README.md`` in ``folder`` from ``results`` (default: the folder's ``eval_results.json``) and, when
    given, the ``train/evaluate.py`` JSON report ``evaluation`` in which this model is the column ``model_key``."""
    folder = Path(folder)
    if results is None:
        results = json.loads((folder / "eval_results.json").read_text())
    report = json.loads(Path(evaluation).read_text()) if evaluation is not None else None
    path = folder / "README.md"
    path.write_text(model_card(results, name or folder.name, report, model_key or name or folder.name))
    return path
