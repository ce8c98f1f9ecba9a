"""BIKAnet-HF: blind single-image deblurring (kernel estimation + the kernel-adaptive BIKAnet) for 🤗 users."""

from .configuration_bikanet import BikanetConfig
from .image_processing_bikanet import BikanetImageProcessor
from .kernels import bank16, blur, degrade, gaussian_kernel, kernel_to_image, load_kernel, sample_kernels
from .metrics import kernel_l1, psnr, ssim
from .modeling_bikanet import BikanetForImageDeblurring

__version__ = "0.1.0"

__all__ = [
    "BikanetConfig",
    "BikanetForImageDeblurring",
    "BikanetImageProcessor",
    "bank16",
    "blur",
    "degrade",
    "gaussian_kernel",
    "kernel_l1",
    "kernel_to_image",
    "load_kernel",
    "psnr",
    "sample_kernels",
    "ssim",
]
