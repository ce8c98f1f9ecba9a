"""Make the app's bundled example photos: public-domain / CC0 pictures from ``skimage.data``, blurred as the
benchmark blurs (``kernels.degrade`` with bank16 kernels, no noise), saved as PNG in ``bikanet_hf/examples/``, plus
one sharp picture for the app's "try it on a sharp photo" tab.

Run from the repository root: ``python space/make_examples.py``. The output is deterministic; the example table in
``app.py`` (``EXAMPLES``) and ``bikanet_hf/examples/README.md`` list the same files and kernel parameters.

Never use the benchmark images (BSDS500 and co. in ``shared/data``) here: they may not be redistributed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from bikanet_hf import kernels

MAX_SIDE = 512
SHARP_EXAMPLE = "chelsea"  # also saved unblurred (the smallest file of the three)
# name in skimage.data → (licence as skimage's docstring states it, bank16 index of the blur kernel)
SOURCES = {
    "astronaut": ("public domain (NASA; Eileen Collins)", 2),
    "coffee": ("CC0 (photographer Rachel Michetti, Pikolo Espresso Bar)", 5),
    "chelsea": ("CC0 (photographer Stefan van der Walt)", 12),
}


def load_sharp(name: str) -> np.ndarray:
    """The skimage picture as RGB uint8, downscaled (Lanczos) so that its longer side is at most ``MAX_SIDE``."""
    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    scale = MAX_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return np.array(image)  # a writable copy: torch warns about read-only arrays in kernels.degrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "bikanet_hf" / "examples",
        help="Folder for the PNG files (default: bikanet_hf/examples).",
    )
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, (licence, kernel_id) in SOURCES.items():
        sigma_major, sigma_minor, theta = kernels.BANK16_PARAMS[kernel_id]
        sharp = load_sharp(name)
        blurred = kernels.degrade(sharp, kernels.gaussian_kernel(sigma_major, sigma_minor, theta))
        path = args.output_dir / f"{name}_blurred.png"
        Image.fromarray(blurred).save(path, optimize=True)
        print(
            f"{path.name}: {blurred.shape[1]}×{blurred.shape[0]}, bank16 #{kernel_id} "
            f"(σ major {sigma_major}, σ minor {sigma_minor}, angle {theta}°), {path.stat().st_size // 1024} KB; "
            f"{licence}"
        )
        if name == SHARP_EXAMPLE:
            path = args.output_dir / f"{name}_sharp.png"
            Image.fromarray(sharp).save(path, optimize=True)
            print(f"{path.name}: {sharp.shape[1]}×{sharp.shape[0]}, unblurred, {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
