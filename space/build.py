"""Assemble a deployable Hugging Face Space folder: ``python space/build.py OUTDIR``.

The Space is this repository's ``app.py`` plus the ``bikanet_hf`` package (with its checkpoint and example photos)
beside it, and ``space/README.md`` (the Space's YAML card) and ``space/requirements.txt`` at its root. Copying at
build time keeps one ``app.py`` in git. ``--model-id user/name`` lists the Hub model the Space shows (the card's
``models:``; pushed with ``bikanet push model``). Upload the result with ``bikanet push space OUTDIR user/name``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "space"
PACKAGE = "bikanet_hf"
CHECKPOINT = Path(PACKAGE) / "checkpoints" / "bikanet"
MOTION_CHECKPOINT = Path(PACKAGE) / "checkpoints" / "bikanet-motion"
LARGE_CHECKPOINT = Path(PACKAGE) / "checkpoints" / "bikanet-large"
FILES = {  # destination in the Space → source in the repository
    "README.md": SPACE_DIR / "README.md",
    "requirements.txt": SPACE_DIR / "requirements.txt",
    "app.py": REPO_ROOT / "app.py",
}


def build(
    out_dir: Path, overwrite: bool = False, allow_missing_checkpoint: bool = False, model_id: str | None = None
) -> list[Path]:
    """Write the Space into ``out_dir``; returns the files written (relative paths)."""
    out_dir = out_dir.resolve()
    if out_dir == REPO_ROOT or out_dir in REPO_ROOT.parents or (REPO_ROOT / PACKAGE) in (out_dir, *out_dir.parents):
        raise ValueError(f"{out_dir} would overwrite the repository itself; choose an empty folder elsewhere.")
    for folder in (CHECKPOINT, CHECKPOINT / "kernel_estimator", MOTION_CHECKPOINT):
        if not (REPO_ROOT / folder / "config.json").is_file() and not allow_missing_checkpoint:
            raise FileNotFoundError(
                f"No checkpoint in {REPO_ROOT / folder}: the Space would fail at start-up. Put the trained model "
                "there (train/bundle_checkpoint.py), or pass --allow-missing-checkpoint for a dry run."
            )
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} is not empty; pass --overwrite to replace its contents.")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, source in FILES.items():
        shutil.copy2(source, out_dir / name)
    if model_id:  # the card's YAML header lists the model the Space uses
        card = (out_dir / "README.md").read_text(encoding="utf-8")
        (out_dir / "README.md").write_text(card.replace("\n---\n", f"\nmodels:\n  - {model_id}\n---\n", 1))
    # The Space runs the default checkpoints; the opt-in large one (15 MB, about 5× slower on a CPU) stays out.
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", LARGE_CHECKPOINT.name)
    shutil.copytree(REPO_ROOT / PACKAGE, out_dir / PACKAGE, ignore=ignore)
    return sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="Folder to write the Space into (created; must be empty).")
    parser.add_argument("--overwrite", action="store_true", help="Replace the contents of a non-empty out_dir.")
    parser.add_argument(
        "--allow-missing-checkpoint",
        action="store_true",
        help=f"Build even without {CHECKPOINT} (the Space then fails at start-up; for dry runs).",
    )
    parser.add_argument("--model-id", default=None, help="Hub model id to list in the card's models: field.")
    args = parser.parse_args(argv)
    try:
        files = build(args.out_dir, args.overwrite, args.allow_missing_checkpoint, args.model_id)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = sum((args.out_dir / f).stat().st_size for f in files)
    print(f"Wrote {len(files)} files ({size / 1e6:.1f} MB) to {args.out_dir.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
