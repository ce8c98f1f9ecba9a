"""Reliability under bad input, faults and load: seeded fuzzing of image files through ``deblur``, the CLI and the
app's reader; a training run killed with SIGKILL and resumed; corrupt checkpoints; a full disk and an unusable
output folder in the CLI; concurrent requests to the app. Bounded in count and time, loopback only. Each test
records its counts (tried / passed) in ``test-artifacts/reliability.json`` so they can be quoted."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bikanet_hf import deblur
from bikanet_hf.cli import main
from bikanet_hf.kernels import gaussian_kernel
from bikanet_hf.training import list_checkpoints
from tests.conftest import REPO_ROOT, script_command
from tests.test_app import load_app, serve_app, write_photo

KERNEL = gaussian_kernel(2.0, 1.0, 30)
RECORD = REPO_ROOT / "test-artifacts" / "reliability.json"


def record(name: str, **counts) -> None:
    RECORD.parent.mkdir(exist_ok=True)
    data = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    data[name] = counts
    RECORD.write_text(json.dumps(data, indent=2))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG file whose header declares ``width×height`` pixels (a decompression bomb's calling card)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


def malformed_files(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` broken image files of several kinds, reproducibly."""
    rng = np.random.default_rng(seed)
    good = {}
    for fmt in ("PNG", "JPEG", "WEBP", "BMP"):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(buffer, format=fmt)
        good[fmt] = buffer.getvalue()
    files = []
    for i in range(count):
        kind = i % 6
        fmt = list(good)[i % len(good)]
        if kind == 0:
            data = rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()  # random bytes
        elif kind == 1:
            data = good[fmt][: int(rng.integers(8, len(good[fmt]) // 2))]  # truncated
        elif kind == 2:
            data = b""  # zero-sized
        elif kind == 3:
            side = int(rng.choice([30_000, 70_000, 200_000]))
            data = bomb_png(side, side)  # huge declared dimensions
        elif kind == 4:
            fmt = "PNG"  # its checksums catch a damaged body (a BMP or JPEG body of noise is still a picture)
            data = bytearray(good[fmt])  # the header intact, the body overwritten with noise
            start = min(len(data) - 1, 64)
            data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
            data = bytes(data)
        else:
            data = b"%PDF-1.4 this is a document, not a picture\n" * int(rng.integers(1, 50))
        path = folder / f"fuzz_{i:03d}.{fmt.lower()}"
        path.write_bytes(data)
        files.append(path)
    return files


def test_fuzzed_files_give_clear_errors_everywhere(tmp_path):
    app = load_app(tmp_path / "app")
    files = malformed_files(tmp_path, 100)
    outcomes = {"api": 0, "app": 0}
    slowest = 0.0
    for path in files:
        start = time.perf_counter()
        try:
            deblur(path, KERNEL)
        except ValueError as err:
            assert str(err) and "Traceback" not in str(err)
            outcomes["api"] += 1
        except Exception as err:  # pragma: no cover - this is the failure the test exists to catch
            pytest.fail(f"{path.name}: {type(err).__name__} escaped deblur(): {err}")
        with pytest.raises(app.gr.Error) as excinfo:
            app.read_photo({"path": str(path), "orig_name": path.name})
        assert path.name in excinfo.value.message and str(tmp_path) not in excinfo.value.message
        outcomes["app"] += 1
        slowest = max(slowest, time.perf_counter() - start)
    assert outcomes == {"api": 100, "app": 100} and slowest < 10
    # The CLI: every file reported, none crashes the process, exit status 1, nothing written for them.
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bikanet_hf.cli",
            "deblur",
            str(tmp_path / "fuzz_*"),
            "-o",
            str(out),
            "--sigma",
            "2",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 100 and "100 of 100 inputs failed" in result.stderr
    assert not any(out.iterdir())
    record("fuzz", files=100, api_clear_errors=outcomes["api"], app_clear_errors=outcomes["app"], cli_reported=100)


def test_cli_full_disk_and_unusable_output_folder(tmp_path, monkeypatch, capsys):
    photo = write_photo(tmp_path / "photo.png")
    before = photo.read_bytes()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["deblur", str(photo), "-o", str(blocker / "out"), "--sigma", "2"]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err

    def disk_full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    out = tmp_path / "out"
    assert main(["deblur", str(photo), "-o", str(out), "--sigma", "2", "-q"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert list(out.iterdir()) == [] and photo.read_bytes() == before  # no partial result; input untouched
    record("cli_faults", cases=2, passed=2)


def _estimator_run(folders: Path, out: Path, *extra: str) -> list[str]:
    tiny = ["--head_hidden_size", "8", "--head_layers", "1", "--calibration_samples", "4", "--validation_steps", "50"]
    return script_command("train_kernel_estimator.py", folders, out, *tiny, "--lr_warmup_steps", "1", *extra)


@pytest.mark.slow
def test_training_killed_mid_run_resumes_losing_at_most_one_interval(folders, tmp_path):
    out = tmp_path / "run"
    command = _estimator_run(folders, out, "--max_train_steps", "400", "--checkpointing_steps", "20")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list_checkpoints(out)) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    killed_at = max(int(p.name.split("-")[1]) for p in list_checkpoints(out))
    assert killed_at >= 20, "the run was killed after writing checkpoints"
    resumed = subprocess.run(
        [*command, "--resume_from_checkpoint", "latest", "--stop_after_steps", str(killed_at + 20)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_from = int(resumed.stderr.split("Resumed from ")[1].split(" at step ")[1].split()[0])
    assert killed_at - 20 <= resumed_from <= killed_at  # at most one checkpoint interval lost
    record("sigkill_resume", runs=1, passed=1, lost_steps_at_most=20)


@pytest.mark.slow
def test_corrupt_checkpoint_falls_back_or_says_so(folders, tmp_path):
    out = tmp_path / "run"
    command = _estimator_run(folders, out, "--max_train_steps", "6", "--checkpointing_steps", "2")
    assert subprocess.run([*command, "--stop_after_steps", "4"], capture_output=True, timeout=300).returncode == 0
    newest = list_checkpoints(out)[-1]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as a full disk leaves it

    explicit = subprocess.run([*command, "--resume_from_checkpoint", str(newest)], capture_output=True, text=True)
    assert explicit.returncode != 0 and f"Checkpoint {newest} is corrupt" in explicit.stderr
    assert "Traceback" not in explicit.stderr.split("corrupt")[-1]
    latest = subprocess.run([*command, "--resume_from_checkpoint", "latest"], capture_output=True, text=True)
    assert latest.returncode == 0, latest.stderr[-3000:]
    assert "is corrupt" in latest.stderr and "falling back" in latest.stderr and "Resumed from" in latest.stderr
    record("corrupt_checkpoint", cases=2, passed=2)


@pytest.mark.slow
def test_app_under_twenty_concurrent_requests(tmp_path):
    from gradio_client import Client, handle_file

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    photos = [write_photo(tmp_path / f"p{i}.png", 48, 64, seed=i) for i in range(20)]
    with serve_app(tmp_path / "server") as (_, url):
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        client.predict(handle_file(photos[0]), api_name="/deblur_blind")  # warm-up
        baseline = rss_mb()

        def one(photo):
            try:
                client.predict(handle_file(photo), api_name="/deblur_blind")
                return "ok"
            except Exception as err:  # a full queue answers with a message, which is allowed
                assert "queue" in str(err).lower(), err
                return "queue full"

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=20) as pool:
            outcomes = list(pool.map(one, photos))
        seconds = time.perf_counter() - start
        assert client.predict(handle_file(photos[1]), api_name="/deblur_blind")  # still serving
        growth = rss_mb() - baseline
        # Malformed uploads through the running server: each one a sentence, and the server keeps serving.
        rejected = 0
        for path in malformed_files(tmp_path, 12, seed=1):
            with pytest.raises(Exception, match="Could not read|Please upload|too large") as excinfo:
                client.predict(handle_file(path), api_name="/deblur_blind")
            assert "Traceback" not in str(excinfo.value)
            rejected += 1
        assert client.predict(handle_file(photos[2]), api_name="/deblur_blind")
    assert set(outcomes) <= {"ok", "queue full"} and seconds < 120
    assert growth < 300, f"memory grew by {growth:.0f} MB"
    record(
        "load",
        requests=20,
        completed=outcomes.count("ok"),
        queue_full=outcomes.count("queue full"),
        seconds=round(seconds, 1),
        memory_growth_mb=round(growth, 1),
        malformed_uploads_rejected_with_a_sentence=f"{rejected}/12",
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
