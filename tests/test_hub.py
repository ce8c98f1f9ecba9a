import json

from huggingface_hub import ModelCard

from bikanet_hf.hub import write_model_card

TRAINING = {
    "steps": 10,
    "best_step": 10,
    "train_minutes": 1.5,
    "hardware": "CPU, 2 threads",
    "batch_size": 16,
    "crop_size": 64,
    "learning_rate": 1e-3,
    "loss": "l1",
    "ema_decay": 0.999,
    "bank16_fraction": 0.5,
    "context_probability": 0.1,
    "noise_sigma": 0.0,
    "seed": 0,
    "train_sources": ["bsds500_train"],
    "num_parameters": 1234,
}
VALIDATION = {
    "psnr": 28.1,
    "ssim": 0.84,
    "blurred_psnr": 24.3,
    "blurred_ssim": 0.66,
    "delta_psnr": 3.8,
    "num_pairs": 16,
}


def scores(psnr):
    return {"psnr": psnr, "ssim": psnr / 40, "delta_psnr": psnr - 24.0, "num_pairs": 100}


def test_model_card_metadata_carries_the_evaluation_numbers(tmp_path):
    evaluation = {
        "results": {
            "bsds500_val": {"quick": {"blurred": scores(24.0), "wiener": scores(27.1), "mine": scores(28.9)}},
            "set14": {"random": {"blurred": scores(23.0), "wiener": scores(26.0), "mine": scores(27.345678)}},
        },
        "wiener": {"balance": 0.001},
    }
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    (tmp_path / "eval_results.json").write_text(json.dumps({"validation_quick": VALIDATION, "training": TRAINING}))
    path = write_model_card(tmp_path, name="mine", evaluation=tmp_path / "eval.json")
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "image-to-image" and data["library_name"] == "transformers"
    assert data["license"] == "other" and set(data["metrics"]) == {"psnr", "ssim"}
    results = data["model-index"][0]["results"]
    assert [r["dataset"]["type"] for r in results] == ["bsds500_val", "set14"]
    assert results[1]["metrics"][0] == {"type": "psnr", "name": "PSNR (dB)", "value": 27.346}
    assert "| set14 | random | 100 | 23.00 / 0.5750 | 26.00 / 0.6500 | 27.35 / 0.6836 |" in card.text
    assert "10% of the crops" in card.text


def test_model_card_without_evaluation_uses_training_validation(tmp_path):
    (tmp_path / "eval_results.json").write_text(json.dumps({"validation_quick": VALIDATION, "training": TRAINING}))
    data = ModelCard.load(write_model_card(tmp_path, name="m")).data.to_dict()
    assert data["model-index"][0]["results"][0]["metrics"][0]["value"] == 28.1


def test_model_card_says_when_defocus_disks_were_trained_on(tmp_path):
    for fraction, said in ((0.0, False), (0.25, True)):
        training = {**TRAINING, "defocus_fraction": fraction, "near_sharp_fraction": fraction / 2}
        (tmp_path / "eval_results.json").write_text(json.dumps({"validation_quick": VALIDATION, "training": training}))
        text = ModelCard.load(write_model_card(tmp_path, name="m")).text
        assert ("a defocus disk of radius 1–7.5 px instead for 25% of them" in text) is said
        assert ("a nearly sharp Gaussian (σ 0.3–0.6) for 12% of the others" in text) is said
        assert "Gaussian family" in text


def test_model_card_reads_the_ranges_and_jpeg_floor_a_run_recorded(tmp_path):
    recorded = {
        **TRAINING,
        "defocus_fraction": 0.25,
        "defocus_radius_range": [2.0, 5.5],
        "near_sharp_fraction": 0.1,
        "near_sharp_sigma_range": [0.25, 0.5],
        "noise_sigma": 5.0,
        "noise_probability": 0.5,
        "jpeg_probability": 0.3,
        "jpeg_quality_range": [80, 90],
        "jpeg_noise_level": 3.0,
    }
    cases = (
        (recorded, ("radius 2–5.5 px", "(σ 0.25–0.5)", "quality 80–90", "at least 3 grey levels")),
        # older runs recorded no ranges: the ones this package trains with; a model that reads no noise level is
        # told nothing
        (
            {k: v for k, v in recorded.items() if not k.endswith("_range")} | {"jpeg_noise_level": None},
            ("radius 1–7.5 px", "(σ 0.3–0.6)", "quality 70–95 and read back;"),
        ),
    )
    for training, said in cases:
        (tmp_path / "eval_results.json").write_text(json.dumps({"validation_quick": VALIDATION, "training": training}))
        text = ModelCard.load(write_model_card(tmp_path, name="m")).text
        for phrase in said:
            assert phrase in text
        assert ("grey levels of noise for those" in text) is (training["jpeg_noise_level"] is not None)
