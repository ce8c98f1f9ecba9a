"""Model cards for checkpoints: YAML metadata plus a body, with every number read from ``eval_results.json``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

# The code is Apache-2.0, but the weights are trained on BSDS500, whose licence allows non-commercial research
# use only; the Hub's "other" licence with a name says so in the metadata.
LICENSE = "other"
LICENSE_NAME = "research-only-weights"


def _model_index(name: str, validation: dict) -> list[dict]:
    return [
        {
            "name": name,
            "results": [
                {
                    "task": {"type": "image-to-image", "name": "Non-blind image deblurring (true kernel)"},
                    "dataset": {
                        "type": "bsds500_val",
                        "name": "BSDS500 val, protocol quick pairs (bank16 kernel i mod 16)",
                    },
                    "metrics": [
                        {"type": "psnr", "name": "PSNR (dB)", "value": round(validation["psnr"], 3)},
                        {"type": "ssim", "name": "SSIM", "value": round(validation["ssim"], 4)},
                        {
                            "type": "psnr",
                            "name": "PSNR gain over the blurred input (dB)",
                            "value": round(validation["delta_psnr"], 3),
                        },
                    ],
                }
            ],
        }
    ]


def model_card(results: dict, name: str = "bikanet") -> str:
    """The README.md of a BIKAnet checkpoint folder, from the ``eval_results.json`` written by training."""
    validation, training = results["validation_quick"], results["training"]
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "image-to-image",
        "license": LICENSE,
        "license_name": LICENSE_NAME,
        "tags": ["image-deblurring", "deblurring", "image-restoration", "bikanet", "non-blind"],
        "metrics": ["psnr", "ssim"],
        "model-index": _model_index(name, validation),
    }
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    n = validation["num_pairs"]
    return f"""---
{header}---

# {name}: BIKAnet (Blind Image Kernel-Adaptive network)

Removes a known blur kernel from a photo. Kernel-adaptive AE blocks whose AdaIN scale and bias come from a mapping
network fed the kernel, a long-term skip from the head into every block, and a Wiener-deconvolution front-end; see
the [BIKAnet-HF README](https://huggingface.co/spaces/bikanet-hf/bikanet) for the design. For blind deblurring,
pair it with a kernel estimator (`bikanet_hf.estimate_kernel`).

## Results (measured at the end of training)

Protocol quick pairs of BSDS500 val (first {n} images, image i blurred with bank16 kernel i mod 16, 8-bit), the
true kernel given:

| | PSNR (dB) | SSIM |
|---|---|---|
| blurred input | {validation["blurred_psnr"]:.2f} | {validation["blurred_ssim"]:.4f} |
| this model | {validation["psnr"]:.2f} | {validation["ssim"]:.4f} |
| gain | {validation["delta_psnr"]:+.2f} | {validation["ssim"] - validation["blurred_ssim"]:+.4f} |

## Usage

```python
import torch
from bikanet_hf import BikanetForImageDeblurring, BikanetImageProcessor, gaussian_kernel

model = BikanetForImageDeblurring.from_pretrained("path/or/hub-id").eval()
processor = BikanetImageProcessor.from_pretrained("path/or/hub-id")
inputs = processor(image, return_tensors="pt")
kernel = torch.from_numpy(gaussian_kernel(2.5, 1.0, 30.0)).float()[None]
with torch.no_grad():
    out = model(pixel_values=inputs["pixel_values"], kernel=kernel)
sharp = processor.postprocess(out.reconstruction, inputs["original_sizes"])[0]
```

## Training

- Data: on-the-fly crops ({training["crop_size"]}×{training["crop_size"]}) of {", ".join(training["train_sources"])},
  each blurred with a fresh kernel (bank16 with probability {training["bank16_fraction"]}, else the protocol's random
  Gaussian family σ ∈ [0.6, 4.0], any angle), noise σ up to {training["noise_sigma"]}, quantised to 8 bits.
- Optimiser: Adam, peak learning rate {training["learning_rate"]:g}, warm-up then cosine decay,
  {training["loss"]} loss, gradient clipping 1.0, EMA decay {training["ema_decay"]:g} (0 = off);
  batch {training["batch_size"]}; seed {training["seed"]}.
- Steps: {training["steps"]} (best validation at step {training["best_step"]}); {training["train_minutes"]:.0f} minutes
  on {training["hardware"]}; {training["num_parameters"]:,} parameters.

## Limitations

- Trained on Gaussian-like blur up to σ = 4 px in a 17×17 kernel; strong camera-shake motion blur is out of scope.
- Needs the kernel: with an estimated kernel the result is only as good as the estimate.
- Trained on BSDS500 (non-commercial research licence); the weights are shared for research use.
"""


def write_model_card(folder: str | Path, results: dict | None = None, name: str | None = None) -> Path:
    """Write ``README.md`` in ``folder`` from ``results`` (default: the folder's ``eval_results.json``)."""
    folder = Path(folder)
    if results is None:
        results = json.loads((folder / "eval_results.json").read_text())
    path = folder / "README.md"
    path.write_text(model_card(results, name or folder.name))
    return path
