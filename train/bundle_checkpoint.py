#!/usr/bin/env python
"""Copy a finished training run into the package as a default checkpoint, with its model card.

Bundled folders (``bikanet_hf/checkpoints/bikanet`` and, inside it, the kernel estimator's ``kernel_estimator``, so
that one folder or Hub repository holds a whole blind deblurrer) are what the app,
the tests and ``from_pretrained(<bundled path>)`` use offline. Each holds the weights (safetensors), the config, the
image processor when the model has one, ``eval_results.json`` and a ``README.md`` card whose numbers come from the
run's validation and, for BIKAnet with ``--evaluation``, a ``train/evaluate.py`` report. The model's Python files
are not copied: inside the package the classes come from ``bikanet_hf`` itself (``save_pretrained`` to any other
folder copies them for ``trust_remote_code`` loading).

Example:

    python train/bundle_checkpoint.py --run runs/bikanet-main --evaluation benchmarks/results/table1.json \\
        --model_key bikanet
    python train/bundle_checkpoint.py --run runs/estimator --out bikanet_hf/checkpoints/bikanet/kernel_estimator
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from transformers import AutoModel

import bikanet_hf
from bikanet_hf import BikanetImageProcessor
from bikanet_hf.hub import write_model_card
from bikanet_hf.training import list_checkpoints, load_trainer_state

DEFAULT_OUT = Path(bikanet_hf.__file__).resolve().parent / "checkpoints" / "bikanet"
MAX_BYTES = 25 * 1024 * 1024


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="A finished train/train_bikanet.py --output_dir.")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Destination folder (default: the bundled checkpoint).")
    p.add_argument(
        "--evaluation",
        default=None,
        help="A train/evaluate.py JSON report to put in a BIKAnet card (otherwise the "
        "run's own README.md card is copied).",
    )
    p.add_argument("--model_key", default="bikanet", help="This model's column name in --evaluation.")
    p.add_argument("--name", default="bikanet", help="Model name shown in the card.")
    args = p.parse_args(argv)

    run, out = Path(args.run), Path(args.out)
    results = json.loads((run / "eval_results.json").read_text())
    checkpoints = list_checkpoints(run)
    if checkpoints:  # runs made before a field existed: take it from the run's own recorded arguments
        recorded = load_trainer_state(checkpoints[-1])["args"]
        results["training"].setdefault("context_probability", recorded.get("context_probability", 1.0))
        results["training"].setdefault("noise_probability", recorded.get("noise_probability"))
    if out.exists():  # replace the files; subfolders (the BIKAnet folder's kernel_estimator) are kept
        for old in out.iterdir():
            if old.is_file():
                old.unlink()
    model = AutoModel.from_pretrained(run)  # BIKAnet or the estimator
    # BIKAnet's noise-level input is read from the model itself (a run continued from a model that has it need not
    # have passed the flag); the estimator has no such input, and its record gets no such field.
    if hasattr(model.config, "noise_level_input"):
        results["training"].setdefault("noise_level_input", model.config.noise_level_input)
    model.save_pretrained(out, safe_serialization=True)
    if (run / "preprocessor_config.json").is_file():
        BikanetImageProcessor.from_pretrained(run).save_pretrained(out)
    for copied_code in out.glob("*.py"):
        copied_code.unlink()
    # Without its code files the folder cannot serve its pipeline as remote code; inside the package the pipeline is
    # registered by bikanet_hf itself, and a custom_pipelines entry would make pipeline() demand trust_remote_code.
    config = json.loads((out / "config.json").read_text())
    if config.pop("custom_pipelines", None) is not None:
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "eval_results.json").write_text(json.dumps(results, indent=2))
    if "psnr" in results["validation_quick"]:  # a BIKAnet run: its card, with the evaluation when given
        write_model_card(out, results, name=args.name, evaluation=args.evaluation, model_key=args.model_key)
    else:
        shutil.copy(run / "README.md", out / "README.md")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is {size / 2**20:.1f} MB, over the 25 MB a bundled checkpoint may take.")
    print(f"bundled {run} into {out} ({size / 2**20:.2f} MB)")
    return out


if __name__ == "__main__":
    main()
