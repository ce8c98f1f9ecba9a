"""A saved checkpoint loads through the Auto classes, also where ``bikanet_hf`` is not importable."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageToImage

from bikanet_hf import BikanetConfig, BikanetForImageDeblurring, BikanetImageProcessor
from bikanet_hf.kernels import bank16


def run_without_the_package(script: str, folder) -> None:
    """Run ``script`` in a fresh interpreter, offline, with ``bikanet_hf`` unimportable; fail with its stderr."""
    script = 'import sys\nsys.modules["bikanet_hf"] = None  # as if the package were not installed\n' + script
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=folder,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


def save_tiny(folder):
    torch.manual_seed(0)
    model = BikanetForImageDeblurring(BikanetConfig(hidden_size=4, block_hidden_size=8, num_blocks=1)).eval()
    with torch.no_grad():  # non-zero tail so that the output depends on every weight
        model.tail.weight.normal_(0, 0.1)
    model.save_pretrained(folder)
    BikanetImageProcessor().save_pretrained(folder)
    return model


def test_auto_classes_inside_the_package(tmp_path):
    model = save_tiny(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), BikanetConfig)
    for auto in (AutoModel, AutoModelForImageToImage):
        loaded = auto.from_pretrained(tmp_path)
        assert isinstance(loaded, BikanetForImageDeblurring)
        torch.testing.assert_close(loaded.tail.weight, model.tail.weight)


def test_saved_folder_loads_with_trust_remote_code_without_the_package(tmp_path):
    model = save_tiny(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageToImage"}
    for name in ("configuration_bikanet.py", "modeling_bikanet.py", "image_processing_bikanet.py"):
        assert (tmp_path / name).is_file()
    image = np.random.default_rng(0).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "kernel.npy", bank16()[7].astype(np.float32))
    processor = BikanetImageProcessor()
    inputs = processor(image)
    with torch.no_grad():
        expected = model(inputs["pixel_values"], torch.from_numpy(bank16()[[7]]).float()).reconstruction

    script = textwrap.dedent(
        f"""
        import numpy as np, torch
        from transformers import AutoImageProcessor, AutoModel, AutoModelForImageToImage
        folder = {str(tmp_path)!r}
        model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        assert type(model).__name__ == "BikanetForImageDeblurring", type(model)
        assert "bikanet_hf" not in type(model).__module__
        AutoModelForImageToImage.from_pretrained(folder, trust_remote_code=True)
        processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
        inputs = processor(np.load(folder + "/image.npy"))
        kernel = torch.from_numpy(np.load(folder + "/kernel.npy"))[None]
        with torch.no_grad():
            out = model(pixel_values=inputs["pixel_values"], kernel=kernel).reconstruction
        torch.save(out, folder + "/out.pt")
        """
    )
    run_without_the_package(script, tmp_path)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected)


def test_pipeline_loads_with_trust_remote_code_without_the_package(tmp_path):
    """A saved BIKAnet folder (with its kernel estimator in ``kernel_estimator/``) runs the ``image-deblurring``
    pipeline, blind and with a kernel, where bikanet_hf is not importable, with the same pixels as ``deblur``."""
    from bikanet_hf import BikanetKernelEstimator, BikanetKernelEstimatorConfig, deblur

    model = save_tiny(tmp_path)
    estimator = BikanetKernelEstimator(BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1))
    estimator.save_pretrained(tmp_path / "kernel_estimator")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["custom_pipelines"]["image-deblurring"]["impl"] == "pipeline_bikanet.ImageDeblurringPipeline"
    image = np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "kernel.npy", bank16()[3])
    script = textwrap.dedent(
        f"""
        import numpy as np
        from transformers import pipeline
        folder = {str(tmp_path)!r}
        pipe = pipeline("image-deblurring", model=folder, trust_remote_code=True, device="cpu")
        assert "bikanet_hf" not in type(pipe).__module__, type(pipe).__module__
        image = np.load(folder + "/image.npy")
        np.save(folder + "/known.npy", np.asarray(pipe(image, kernel=np.load(folder + "/kernel.npy"))["image"]))
        blind = pipe(image)
        np.save(folder + "/blind.npy", np.asarray(blind["image"]))
        np.save(folder + "/blind_kernel.npy", blind["kernel"])
        """
    )
    run_without_the_package(script, tmp_path)
    known = deblur(image, bank16()[3], model=model)
    np.testing.assert_array_equal(np.load(tmp_path / "known.npy"), np.asarray(known.image))
    blind = deblur(image, model=model, estimator=BikanetKernelEstimator.from_pretrained(tmp_path / "kernel_estimator"))
    np.testing.assert_array_equal(np.load(tmp_path / "blind.npy"), np.asarray(blind.image))
    np.testing.assert_allclose(np.load(tmp_path / "blind_kernel.npy"), blind.kernel, atol=1e-6)
