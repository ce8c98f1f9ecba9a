"""The ``bikanet`` command line.

Commands:
  bikanet deblur IN [IN ...] -o OUTDIR [--kernel FILE | --sigma S1 [S2] | --motion LEN] [--angle DEG]
               [--blur-type gaussian|motion|defocus|auto]
                                                                         deblur photos (blind without a kernel)
  bikanet estimate-kernel IN [-o FILE]                                   estimate a photo's blur kernel
  bikanet blur IN -o OUT (--kernel FILE | --sigma S1 [S2] | --motion LEN) [--angle DEG]
                                                                         blur a sharp image as the benchmark does
  bikanet kernel (--kernel FILE | --sigma S1 [S2] | --motion LEN) [--angle DEG] -o PNG
                                                                         save a picture of a kernel
  bikanet push {model,corpus,space} FOLDER REPO_ID [--private] [--revision BRANCH] [--token TOKEN]
                                                                         share a folder on the Hugging Face Hub

Run ``bikanet COMMAND --help`` for the details of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from .deblurring import BLUR_TYPES, JPEG_NOISE_LEVEL
from .estimation import METHODS
from .image_io import load_rgb
from .kernels import (
    KERNEL_SIZE,
    defocus_kernel,
    defocus_radius,
    degrade,
    describe_kernel,
    gaussian_kernel,
    kernel_to_image,
    load_kernel,
)
from .modeling_bikanet import PRECISIONS
from .motion import MOTION_KERNEL_SIZE, linear_motion_kernel

EPILOG_KERNEL = (
    "Kernels: give a file (.npy, .png or .mat, any odd size; normalised to sum 1) with --kernel, a Gaussian with "
    "--sigma: one value for an isotropic blur, two for an anisotropic one (major, minor, in pixels) rotated by "
    "--angle degrees from the x axis, a straight motion of --motion pixels in the direction --angle, or the disk of "
    "a lens out of focus with --defocus (its radius in pixels)."
)
BLUR_TYPE_HELP = (
    "gaussian: the main model (17×17 Gaussian-like blur); motion: the motion-blur model (camera shake up to "
    "31×31; blind, it traces the shake's path from the image's edges); defocus: the main model with the disk of a "
    "lens out of focus, blind its radius measured from the photo's spectrum; auto: with a kernel, motion when it is "
    "neither Gaussian-like nor a defocus disk, else gaussian; blind, defocus for each photo whose spectrum shows a "
    "disk, else gaussian (default: auto)"
)


def _add_kernel_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--kernel", metavar="FILE", help="kernel file: .npy, .png or .mat (first kernel in the file)")
    group.add_argument(
        "--sigma",
        metavar="S",
        type=float,
        nargs="+",
        help="Gaussian widths in pixels: σ (isotropic) or σ_major σ_minor",
    )
    group.add_argument("--motion", metavar="LENGTH", type=float, help="a straight motion of LENGTH pixels")
    group.add_argument(
        "--defocus", metavar="RADIUS", type=float, help="a defocus disk of RADIUS pixels (a lens out of focus)"
    )
    parser.add_argument(
        "--angle",
        metavar="DEG",
        type=float,
        default=0.0,
        help="rotation of an anisotropic Gaussian or direction of a motion, degrees from the x axis (default: 0)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help=f"side of a --sigma, --motion or --defocus kernel in pixels, odd (default: {KERNEL_SIZE} for a "
        f"Gaussian or a disk, {MOTION_KERNEL_SIZE} for a motion)",
    )


def _kernel_from_args(args: argparse.Namespace) -> np.ndarray:
    if args.kernel:
        return load_kernel(args.kernel)
    if args.motion is not None:
        return linear_motion_kernel(args.motion, args.angle, size=args.size or MOTION_KERNEL_SIZE)
    if args.defocus is not None:
        return defocus_kernel(args.defocus, size=args.size or KERNEL_SIZE)
    if len(args.sigma) > 2:
        raise ValueError("--sigma takes one value (isotropic) or two (major minor).")
    major = args.sigma[0]
    minor = args.sigma[1] if len(args.sigma) == 2 else major
    major, minor = max(major, minor), min(major, minor)
    return gaussian_kernel(major, minor, args.angle, size=args.size or KERNEL_SIZE)


def _refuse_to_overwrite(output: Path, inputs: list[Path], force: bool) -> None:
    if any(output.resolve() == p.resolve() for p in inputs):
        raise ValueError(f"{output} is an input file; choose another output path (inputs are never overwritten).")
    if output.exists() and not force:
        raise ValueError(f"{output} already exists; pass --force to replace it.")


def cmd_blur(args: argparse.Namespace) -> int:
    kernel = _kernel_from_args(args)
    image = load_rgb(args.input)
    output = Path(args.output)
    _refuse_to_overwrite(output, [Path(args.input)], args.force)
    import torch

    generator = torch.Generator().manual_seed(args.seed) if args.noise > 0 else None
    blurred = degrade(image, kernel, noise_sigma=args.noise, generator=generator)
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(blurred).save(output)
    print(f"wrote {output} ({blurred.shape[1]}×{blurred.shape[0]}, kernel {kernel.shape[0]}×{kernel.shape[1]})")
    return 0


def cmd_kernel(args: argparse.Namespace) -> int:
    kernel = _kernel_from_args(args)
    output = Path(args.output)
    _refuse_to_overwrite(output, [Path(args.kernel)] if args.kernel else [], args.force)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".npy":
        np.save(output, kernel)
    else:
        kernel_to_image(kernel, size=args.picture_size).save(output)
    print(f"wrote {output}")
    return 0


def _expand_inputs(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named by ``patterns`` (files, folders — their images, not recursive — and globs), in order and
    without repeats, and the patterns that matched nothing."""
    import glob

    from .image_io import list_images

    files: list[Path] = []
    unmatched = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = list_images(path)
        elif path.is_file():
            matches = [path]
        else:
            matches = [Path(p) for p in sorted(glob.glob(pattern)) if Path(p).is_file()]
        if not matches:
            unmatched.append(pattern)
        files += [m for m in matches if m not in files]
    return files, unmatched


def _save_kernel(kernel: np.ndarray, stem: Path) -> list[Path]:
    paths = [stem.with_name(stem.name + "_kernel.npy"), stem.with_name(stem.name + "_kernel.png")]
    np.save(paths[0], kernel)
    kernel_to_image(kernel).save(paths[1])
    return paths


def cmd_deblur(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .deblurring import deblur, load_model, resolve_blur_type
    from .estimation import known_blur_estimator, load_estimator
    from .modeling_bikanet import user_noise_level

    given = args.kernel or args.sigma or args.motion is not None or args.defocus is not None
    kernel = _kernel_from_args(args) if given else None
    if not 0.0 <= args.strength <= 1.0:
        raise ValueError(f"--strength must be between 0 and 1, got {args.strength:g}.")
    if args.tile_size is not None and args.tile_size < 0:
        raise ValueError(f"--tile-size is a number of pixels, or 0 for one pass; got {args.tile_size}.")
    if kernel is not None and args.spatially_varying:
        raise ValueError("--spatially-varying estimates a kernel per tile: it takes no --kernel, --sigma or --motion.")
    files, unmatched = _expand_inputs(args.inputs)
    for pattern in unmatched:
        print(f"bikanet deblur: {pattern}: no such image file, folder or glob match", file=sys.stderr)
    if not files:
        raise ValueError("no input images found.")
    outdir = Path(args.output_dir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the output folder {outdir}: {err.strerror or err}.") from None
    if not os.access(outdir, os.W_OK):
        raise ValueError(f"{outdir} is not writable.")
    blur_type = resolve_blur_type(args.blur_type, kernel, args.model)
    model = load_model(args.model, blur_type)
    user_noise_level(args.noise_level, model.config)  # a clear error before any photo is read
    estimator = load_estimator(args.estimator, blur_type) if kernel is None else None
    if args.known_blurred:
        if estimator is None or blur_type not in ("auto", "gaussian"):
            raise ValueError(
                "--known-blurred is for blind Gaussian deblurring: no kernel, no --blur-type motion or defocus."
            )
        estimator = known_blur_estimator(estimator)
    failures = len(unmatched)
    for path in tqdm(files, desc="deblur", unit="image", disable=args.quiet or len(files) == 1):
        output = outdir / f"{path.stem}.png"
        try:
            _refuse_to_overwrite(output, files, args.force)
            result = deblur(
                path,
                kernel,
                model=model,
                estimator=estimator,
                method=args.method,
                blur_type=blur_type,
                device=args.device,
                tile_size="auto" if args.tile_size is None else args.tile_size or None,
                self_ensemble=args.self_ensemble,
                spatially_varying=args.spatially_varying,
                strength=args.strength,
                precision=args.precision,
                noise_level=args.noise_level,
            )
            partial = output.with_name(f".{output.name}.partial")
            try:  # a full disk or a crash leaves no half-written result under the final name
                result.image.save(partial, format="PNG")
                os.replace(partial, output)
            finally:
                partial.unlink(missing_ok=True)
            written = [output] + (_save_kernel(result.kernel, outdir / path.stem) if args.save_kernel else [])
            for note in result.notes:
                tqdm.write(f"{path}: {note}", file=sys.stderr)
            if not args.quiet:
                how = "given kernel"
                if result.tile_kernels is not None:  # the note above says how they were found
                    how = f"estimated kernels: one per tile ({len(result.tile_kernels)})"
                elif result.kernel_estimated:
                    how = "estimated kernel: " + describe_kernel(result.kernel)
                if result.noise_level is not None:
                    how += f"; noise σ {result.noise_level:.1f} grey levels"
                tqdm.write(f"{path} -> {', '.join(map(str, written))} ({how}; {result.seconds['total']:.1f} s)")
        except (ValueError, OSError) as err:
            failures += 1
            tqdm.write(f"bikanet deblur: {path}: error: {err}", file=sys.stderr)
    if failures:
        print(f"bikanet deblur: {failures} of {len(files) + len(unmatched)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def cmd_estimate_kernel(args: argparse.Namespace) -> int:
    from .estimation import estimate_kernel

    kernel = estimate_kernel(args.input, method=args.method, estimator=args.estimator, blur_type=args.blur_type)
    disk = f"defocus disk of radius ≈ {defocus_radius(kernel):.1f} px; " if args.blur_type == "defocus" else ""
    print(f"{args.input}: {disk}{describe_kernel(kernel)}")
    if args.output:
        output = Path(args.output)
        _refuse_to_overwrite(output, [Path(args.input)], args.force)
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() == ".npy":
            np.save(output, kernel)
            kernel_to_image(kernel).save(output.with_suffix(".png"))
            print(f"wrote {output} and {output.with_suffix('.png')}")
        else:
            kernel_to_image(kernel, size=args.picture_size).save(output)
            print(f"wrote {output}")
    else:
        with np.printoptions(precision=4, suppress=True, linewidth=200):
            print(kernel)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .push import PUSHERS

    url = PUSHERS[args.kind](args.folder, args.repo_id, private=args.private, revision=args.revision, token=args.token)
    print(f"pushed {args.folder} to {url}")
    return 0


EPILOG_PUSH = """\
What each kind uploads:
  model   a save_pretrained folder: config.json, the weights, the model card README.md (training checkpoints are
          left out); it then loads with from_pretrained("REPO_ID")
  corpus  a DatasetDict saved with save_to_disk (train/build_corpus.py --output-dir), with its dataset card; it then
          loads with datasets.load_dataset("REPO_ID")
  space   a folder built by 'python space/build.py OUTDIR', pushed to a Gradio Space; its README.md must start with
          the Space YAML header (sdk: gradio)

The token comes from --token, else HF_TOKEN, else 'hf auth login'; it needs the write role. HF_ENDPOINT selects
another Hub.

Examples:
  bikanet push model runs/bikanet user/bikanet-deblur
  bikanet push model runs/bikanet user/bikanet-deblur --revision dev --private
  bikanet push corpus corpus/bsds_128 user/bikanet-corpus
  bikanet push space /tmp/space user/bikanet-demo
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bikanet",
        description="BIKAnet-HF: blind single-image deblurring. Deblur photos, estimate and draw blur kernels, blur "
        "images as the benchmark does, share models on the Hub.",
        epilog="Run 'bikanet COMMAND --help' for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "deblur",
        help="deblur photos: blind (kernel estimated) or with a known kernel",
        description="Deblur images and write each as OUTDIR/NAME.png.\n\n"
        "Without --kernel or --sigma the blur kernel of each image is estimated first (blind mode); large photos\n"
        "are processed in overlapping tiles, so memory stays bounded. Inputs are never overwritten; an existing\n"
        "output is replaced only with --force. Files that cannot be read are reported and skipped; the exit status\n"
        "is 0 only when every input was deblurred.",
        epilog=textwrap.fill(EPILOG_KERNEL, 100)
        + "\n\nEstimation methods: amortized (one network pass, tens of milliseconds), gan (KernelGAN trained on\n"
        "the photo, about 20 s on 2 CPU threads), refine (KernelGAN started from the amortized estimate; it\n"
        "returns about that estimate, as the GAN has not improved on it); for camera shake, edges (the shake's\n"
        "path by edge prediction, seconds; the default) or amortized (a straight motion); for defocus, spectral\n"
        "(the disk's radius from the zeros it leaves in the photo's spectrum, a fraction of a second). On the\n"
        "benchmark the amortized estimate is the most accurate for soft blur (kernel error 0.10 against 0.3-0.5\n"
        "for KernelGAN).\n"
        "\nExamples:\n"
        "  bikanet deblur photo.jpg -o sharp/                      blind: estimate the kernel (a lens out of focus\n"
        "                                                          is detected), then deblur\n"
        "  bikanet deblur shots/ 'more/*.png' -o sharp/ --save-kernel\n"
        "  bikanet deblur photo.jpg -o sharp/ --sigma 2.5 1.0 --angle 30\n"
        "  bikanet deblur shaky.jpg -o sharp/ --kernel levin_k4.png --blur-type auto     camera shake, known kernel\n"
        "  bikanet deblur shaky.jpg -o sharp/ --blur-type motion    blind camera shake (path by edge prediction)\n"
        "  bikanet deblur turned.jpg -o sharp/ --blur-type motion --spatially-varying\n"
        "  bikanet deblur missed.jpg -o sharp/ --blur-type defocus --spatially-varying\n"
        "                                                          partly out of focus (focus missed the subject):\n"
        "                                                          only the parts that show a disk are deblurred\n"
        "  bikanet deblur soft.jpg -o sharp/ --strength 0.6           keep 60% of the correction\n"
        "  bikanet deblur fur.jpg -o sharp/ --noise-level 0            a clean photo: keep its fine texture\n"
        "  bikanet deblur soft/ -o sharp/ --known-blurred              all blurred, none sharp (mild blur gains)\n"
        "  bikanet deblur photo.jpg -o sharp/ --kernel psf.npy --device cuda",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders (their images) or glob patterns")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="folder for the results (created)")
    _add_kernel_arguments(p, required=False)
    p.add_argument(
        "--method",
        default=None,
        choices=METHODS,
        help="kernel estimation method in blind mode (default: amortized for gaussian blur, edges for motion, "
        "spectral for defocus; a gaussian method with --blur-type auto looks for no defocus disk)",
    )
    p.add_argument("--blur-type", default="auto", choices=BLUR_TYPES, help=BLUR_TYPE_HELP)
    p.add_argument("--save-kernel", action="store_true", help="also write NAME_kernel.npy and NAME_kernel.png")
    p.add_argument("--device", default=None, help="torch device for BIKAnet, e.g. cpu or cuda (default: cpu)")
    p.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="tile side for large images, overlapping by a quarter of it up to 64 px (by a quarter with "
        "--spatially-varying); 0: one pass (default 512; with --spatially-varying 384 for camera shake, else 256, "
        "as the app)",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto (default): bfloat16 where the device computes it natively (a CPU with AVX-512 BF16 or AMX, a "
        "recent GPU; about 1.5× faster on such a CPU for −0.009 dB), float32 elsewhere; or force float32 / bfloat16",
    )
    p.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the results for the image flipped and turned 8 ways: 8× slower, for +0.13 dB with a known "
        "kernel and +0.10 dB blind (measured on bsds500_val)",
    )
    p.add_argument(
        "--spatially-varying",
        action="store_true",
        help="blind only: estimate a kernel for each tile (see --tile-size) and deblur each tile with its own, for "
        "blur that changes across the photo (a camera that turned, a tilted plane of focus; measured in "
        "benchmarks/results/motion_varying.md); with the default --blur-type auto, a tile whose spectrum shows a "
        "lens's defocus disk gets it and the others their Gaussian estimate; with --blur-type defocus, a photo partly "
        "in focus: the disk each tile shows, tiles that show none left about as they are "
        "(benchmarks/results/partial_focus.md)",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="how much of the correction to keep, 0 (the input) to 1 (the full result, default): tones down a result "
        "that looks over-sharpened",
    )
    p.add_argument(
        "--noise-level",
        type=float,
        default=None,
        metavar="SIGMA",
        help="the photos' noise σ in grey levels (0-255), for the default model, which reads it: larger values smooth "
        "more, 0 keeps fine texture (fur, foliage, engraving lines) that the measurement takes for noise (default: "
        f"measured in each photo, at least {JPEG_NOISE_LEVEL:g} for a JPEG file or one whose pixels show a JPEG's "
        "8x8 blocks, whose compression artefacts the model would sharpen)",
    )
    p.add_argument(
        "--known-blurred",
        action="store_true",
        help="blind: the photos are all blurred, none sharp, so estimates under 0.8 px are not narrowed further: "
        "blur of σ 0.6-0.8 px gains up to 1.5 dB more, a sharp photo comes back 2-3 dB further from itself "
        "(measured in benchmarks/results/kernel_scale.md)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="BIKAnet folder, Hub id or bundled checkpoint: bikanet (the default), bikanet-large (a little "
        "better on Gaussian blur, not trained on defocus, about 5× slower on a CPU) or bikanet-motion "
        "(default: the bundled one for the blur type)",
    )
    p.add_argument("--estimator", default=None, help="kernel estimator folder or Hub id (default: bundled)")
    p.add_argument("--force", action="store_true", help="replace outputs that exist")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=cmd_deblur)

    p = sub.add_parser(
        "estimate-kernel",
        help="estimate the blur kernel of a photo",
        description="Estimate the blur kernel of a photo and print its spread (σ_major, σ_minor, angle) and the\n"
        "17×17 kernel (31×31 with --blur-type motion), or save it with -o: .npy (the array, plus a .png picture\n"
        "beside it) or .png (a picture).",
        epilog="Examples:\n  bikanet estimate-kernel photo.jpg\n  bikanet estimate-kernel photo.jpg -o kernel.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="the blurred image file")
    p.add_argument("-o", "--output", help="save the kernel: .npy (array and picture) or .png (picture)")
    p.add_argument(
        "--method",
        default=None,
        choices=METHODS,
        help="estimation method (default: amortized for gaussian blur, edges for motion, spectral for defocus)",
    )
    p.add_argument(
        "--blur-type",
        default="gaussian",
        choices=("gaussian", "motion", "defocus"),
        help="gaussian (default); motion: a camera-shake kernel (its path with --method edges, the default; a "
        "straight motion of the estimated spread with --method amortized); defocus: the disk of a lens out of focus "
        "(its radius from the photo's spectrum, --method spectral)",
    )
    p.add_argument("--estimator", default=None, help="kernel estimator folder or Hub id (default: bundled)")
    p.add_argument("--picture-size", type=int, default=256, help="picture side in pixels (default: 256)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=cmd_estimate_kernel)

    p = sub.add_parser(
        "blur",
        help="blur a sharp image exactly as the benchmark protocol does",
        description="Blur a sharp image as shared/PROTOCOL.md does: true convolution with mirror padding, optional "
        "Gaussian noise, 8-bit quantisation. Useful to make test images with a known kernel.",
        epilog=EPILOG_KERNEL + " Example: bikanet blur photo.png -o blurred.png --sigma 2.5 1.0 --angle 30",
    )
    p.add_argument("input", help="sharp image file (any format PIL reads)")
    p.add_argument("-o", "--output", required=True, help="output image file (PNG recommended: lossless)")
    _add_kernel_arguments(p)
    p.add_argument("--noise", type=float, default=0.0, help="noise σ on the 0–255 scale (protocol: 2.55; default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default: 0)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=cmd_blur)

    p = sub.add_parser(
        "kernel",
        help="save a kernel as a picture (PNG) or an array (.npy)",
        description="Save a picture of a blur kernel that a person can read (colour map, one square per tap, the "
        "centre tap outlined), or the kernel itself as .npy.",
        epilog=EPILOG_KERNEL + " Example: bikanet kernel --sigma 4 1.5 --angle 60 -o kernel.png",
    )
    _add_kernel_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output file: .png (picture) or .npy (array)")
    p.add_argument("--picture-size", type=int, default=256, help="picture side in pixels (default: 256)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=cmd_kernel)

    p = sub.add_parser(
        "push",
        help="upload a model, a corpus or a Space folder to the Hugging Face Hub",
        description="Upload a trained model folder, a saved training corpus or a Space folder to a Hugging Face\n"
        "Hub repository, creating the repository (and the branch, with --revision) when needed. The folder\n"
        "and the token are checked before anything is uploaded. Prints the URL of the repository.",
        epilog=EPILOG_PUSH,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=("model", "corpus", "space"), help="what FOLDER holds: model, corpus or space")
    p.add_argument("folder", metavar="FOLDER", help="the folder to upload")
    p.add_argument("repo_id", metavar="REPO_ID", help="the Hub repository, 'user/name' or 'organisation/name'")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it does not exist)")
    p.add_argument(
        "--revision", metavar="BRANCH", help="push to this branch, created from main if missing (default: main)"
    )
    p.add_argument(
        "--token", metavar="TOKEN", help="Hub token with the write role (default: HF_TOKEN or hf auth login)"
    )
    p.set_defaults(func=cmd_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            return args.func(args)
    except (ValueError, FileNotFoundError, IndexError, OSError) as err:
        print(f"bikanet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
