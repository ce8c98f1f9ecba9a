"""Build the blurred-crop training corpus and its validation split, save it and/or push it to the Hub.

Example:

    python train/build_corpus.py --crop-size 128 --crops-per-image 4 --num-proc 2 --output-dir corpus/bsds_128
    python train/build_corpus.py --train-dirs ../shared/data/bsds500_train ../shared/data/set14 \\
        --output-dir corpus/mixed --push-to-hub --hub-repo-id user/bikanet-corpus --private
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from datasets import DatasetDict

from bikanet_hf.corpus import (
    DEFAULT_TRAIN_FOLDER,
    DEFAULT_VALIDATION_FOLDER,
    SMALL_IMAGE_POLICIES,
    build_corpus,
    dataset_card,
    default_data_dir,
    push_corpus_to_hub,
    validation_split,
)

# Files that `save_to_disk` writes: --overwrite only deletes a folder that holds one, never an arbitrary folder.
_SAVED_DATASET_MARKERS = ("dataset_dict.json", "state.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python train/build_corpus.py --crop-size 128 --num-proc 2 --output-dir corpus/bsds_128",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--train-dirs",
        nargs="+",
        default=None,
        help=f"Image folders and/or Hub dataset ids ('user/name' or 'user/name:split') for the train split "
        f"(default: {DEFAULT_TRAIN_FOLDER} in the data folder, $BIKANET_DATA_DIR or ../shared/data).",
    )
    parser.add_argument(
        "--validation-dir",
        default=None,
        help=f"Folder whose protocol 'quick' pairs form the validation split (default: {DEFAULT_VALIDATION_FOLDER}).",
    )
    parser.add_argument("--crop-size", type=int, default=128, help="Side of the square training crops in pixels.")
    parser.add_argument("--crops-per-image", type=int, default=4, help="Random crops per training image.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random draw (crops, kernels, noise).")
    parser.add_argument(
        "--bank16-fraction",
        type=float,
        default=0.5,
        help="Probability that a crop's kernel is a bank16 kernel rather than one of the random Gaussian family.",
    )
    parser.add_argument(
        "--noise-sigma", type=float, default=0.0, help="Gaussian noise added after blurring, 0-255 scale (0 = none)."
    )
    parser.add_argument("--num-proc", type=int, default=None, help="Worker processes for decoding and blurring.")
    parser.add_argument(
        "--small-images",
        choices=SMALL_IMAGE_POLICIES,
        default="pad",
        help="What to do with images smaller than the crop plus its 8-pixel blur margin: mirror-pad or skip them.",
    )
    parser.add_argument("--output-dir", default=None, help="Folder to save the DatasetDict to (save_to_disk).")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace --output-dir if it already holds a saved dataset (other non-empty folders are never deleted).",
    )
    parser.add_argument("--push-to-hub", action="store_true", help="Push the corpus and its card to the Hub.")
    parser.add_argument("--hub-repo-id", default=None, help="Hub dataset repo to push to, e.g. 'user/bikanet-corpus'.")
    parser.add_argument("--private", action="store_true", help="Create the Hub repo as private.")
    parser.add_argument("--hub-revision", default=None, help="Branch of the Hub repo to push to (default: main).")
    args = parser.parse_args(argv)
    if args.output_dir is None and not args.push_to_hub:
        parser.error("nothing to do: give --output-dir and/or --push-to-hub.")
    if args.push_to_hub and not args.hub_repo_id:
        parser.error("--push-to-hub needs --hub-repo-id.")
    return args


def _prepare_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Fail before the (long) build if the output folder cannot be written."""
    if not output_dir.exists() or (output_dir.is_dir() and not any(output_dir.iterdir())):
        return
    if not output_dir.is_dir():
        raise SystemExit(f"--output-dir {output_dir} exists and is not a folder.")
    if not overwrite:
        raise SystemExit(f"--output-dir {output_dir} is not empty; pass --overwrite to replace a saved corpus there.")
    if not any((output_dir / marker).exists() for marker in _SAVED_DATASET_MARKERS):
        raise SystemExit(f"--output-dir {output_dir} is not empty and does not hold a saved dataset; not deleting it.")


def main(argv: list[str] | None = None) -> DatasetDict:
    args = parse_args(argv)
    output_dir = Path(args.output_dir) if args.output_dir else None
    if output_dir is not None:
        _prepare_output_dir(output_dir, args.overwrite)

    train_sources = args.train_dirs or [str(default_data_dir() / DEFAULT_TRAIN_FOLDER)]
    build_kwargs = {
        "crop_size": args.crop_size,
        "crops_per_image": args.crops_per_image,
        "seed": args.seed,
        "bank16_fraction": args.bank16_fraction,
        "noise_sigma": args.noise_sigma,
        "small_images": args.small_images,
    }
    corpus = DatasetDict(
        {
            "train": build_corpus(train_sources, num_proc=args.num_proc, **build_kwargs),
            "validation": validation_split(args.validation_dir),
        }
    )

    if output_dir is not None:
        if output_dir.exists() and any(output_dir.iterdir()):
            shutil.rmtree(output_dir)  # checked by _prepare_output_dir: a saved dataset, and --overwrite was given
        corpus.save_to_disk(str(output_dir))
        (output_dir / "README.md").write_text(dataset_card(corpus, train_sources, build_kwargs), encoding="utf-8")
    if args.push_to_hub:
        push_corpus_to_hub(
            corpus,
            args.hub_repo_id,
            private=args.private,
            revision=args.hub_revision,
            sources=train_sources,
            build_kwargs=build_kwargs,
        )

    print("Corpus built:")
    for split, dataset in corpus.items():
        print(f"  {split}: {len(dataset):,} rows")
    if output_dir is not None:
        print(f"Saved to {output_dir}")
    if args.push_to_hub:
        print(f"Pushed to https://huggingface.co/datasets/{args.hub_repo_id}")
    return corpus


if __name__ == "__main__":
    main(sys.argv[1:])
