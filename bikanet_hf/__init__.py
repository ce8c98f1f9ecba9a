"""BIKAnet-HF: blind single-image deblurring (kernel estimation + the kernel-adaptive BIKAnet) for 🤗 users."""

from .configuration_bikanet import BikanetConfig
from .configuration_kernel_estimator import BikanetKernelEstimatorConfig
from .configuration_kernelgan import KernelGANConfig
from .deblurring import DeblurResult, deblur
from .defocus_estimation import DefocusEstimate, estimate_defocus
from .estimation import FlatImageWarning, SlightBlurWarning, estimate_kernel
from .image_processing_bikanet import BikanetImageProcessor
from .kernels import (
    bank16,
    blur,
    defocus_kernel,
    degrade,
    gaussian_kernel,
    kernel_to_image,
    load_kernel,
    sample_kernels,
)
from .metrics import kernel_l1, psnr, ssim
from .modeling_bikanet import BikanetForImageDeblurring
from .modeling_kernel_estimator import BikanetKernelEstimator
from .modeling_kernelgan import KernelGAN
from .motion import (
    camera_shake_kernel,
    levin_kernels,
    linear_motion_kernel,
    rotating_shake_kernels,
    spatially_varying_degrade,
)
from .pipeline_bikanet import ImageDeblurringPipeline

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    """Make ``AutoConfig`` / ``AutoModel`` / ``AutoModelForImageToImage`` / ``AutoImageProcessor`` know BIKAnet, and
    make ``save_pretrained`` copy the self-contained model files and write ``auto_map``, so that a saved folder
    loads with ``trust_remote_code=True`` where this package is not installed."""
    from transformers import AutoConfig, AutoModel, AutoModelForImageToImage

    AutoConfig.register(BikanetConfig.model_type, BikanetConfig, exist_ok=True)
    AutoModel.register(BikanetConfig, BikanetForImageDeblurring, exist_ok=True)
    AutoModelForImageToImage.register(BikanetConfig, BikanetForImageDeblurring, exist_ok=True)
    AutoConfig.register(BikanetKernelEstimatorConfig.model_type, BikanetKernelEstimatorConfig, exist_ok=True)
    AutoModel.register(BikanetKernelEstimatorConfig, BikanetKernelEstimator, exist_ok=True)
    AutoConfig.register(KernelGANConfig.model_type, KernelGANConfig, exist_ok=True)
    AutoModel.register(KernelGANConfig, KernelGAN, exist_ok=True)
    for config_class in (BikanetConfig, BikanetKernelEstimatorConfig):
        config_class.register_for_auto_class()
    for model_class in (BikanetForImageDeblurring, BikanetKernelEstimator):
        model_class.register_for_auto_class("AutoModel")
    BikanetImageProcessor.register_for_auto_class("AutoImageProcessor")
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(
        "image-deblurring", pipeline_class=ImageDeblurringPipeline, pt_model=AutoModelForImageToImage, type="image"
    )
    try:  # transformers 5.17 cannot import AutoImageProcessor without torchvision (fixed in 5.18)
        from transformers import AutoImageProcessor

        AutoImageProcessor.register(BikanetConfig, slow_image_processor_class=BikanetImageProcessor, exist_ok=True)
    except ImportError:
        pass


_register_auto_classes()

__all__ = [
    "BikanetConfig",
    "BikanetForImageDeblurring",
    "BikanetImageProcessor",
    "BikanetKernelEstimator",
    "BikanetKernelEstimatorConfig",
    "DeblurResult",
    "DefocusEstimate",
    "FlatImageWarning",
    "KernelGAN",
    "KernelGANConfig",
    "ImageDeblurringPipeline",
    "deblur",
    "estimate_defocus",
    "estimate_kernel",
    "bank16",
    "blur",
    "camera_shake_kernel",
    "defocus_kernel",
    "degrade",
    "gaussian_kernel",
    "kernel_l1",
    "kernel_to_image",
    "levin_kernels",
    "linear_motion_kernel",
    "load_kernel",
    "psnr",
    "rotating_shake_kernels",
    "sample_kernels",
    "SlightBlurWarning",
    "spatially_varying_degrade",
    "ssim",
]
