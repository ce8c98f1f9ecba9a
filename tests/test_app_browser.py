"""The app in a real browser: Debian's chromium driven by Playwright, with every request that leaves loopback
aborted (a guard, and the proof that the page works offline). ``make test`` installs chromium."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse

import numpy as np
import pytest

from bikanet_hf import kernels

from .test_app import REPO_ROOT, serve_app, write_photo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
        reason=f"no chromium at {CHROMIUM}: `make test` installs it (apt-get install -y chromium)",
    ),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    with serve_app(tmp_path_factory.mktemp("browser-server")) as (_, url):
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()


def offline_page(browser, **context_options):
    """A page whose requests to anything but loopback are aborted; ``page.blocked`` lists them."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_MS)
    blocked: list[str] = []

    def guard(route):
        url = route.request.url
        if urlparse(url).scheme in ("data", "blob") or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.blocked = blocked
    return page


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_number(page, elem_id: str, value: str) -> None:
    """Type a value into a slider's number box and commit it."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")


def upload_photo(page, prefix: str, photo) -> None:
    """Upload a photo into a tab and wait until its preview shows (the upload finished)."""
    page.locator(f"#{prefix}-photo input[type=file]").set_input_files(photo)
    page.locator(f"#{prefix}-photo img").first.wait_for(state="visible")


def test_blind_deblur_in_the_browser_offline(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    page.locator("#blind-run").wait_for(state="visible")  # blind is the first tab a visitor sees
    page.locator("#blind-photo input[type=file]").set_input_files(write_photo(tmp_path / "browser.png", 96, 128))
    page.locator("#blind-photo img").first.wait_for(state="visible")  # the upload finished and shows a preview
    page.locator("#blind-run").click()
    slider_images = page.locator("#result-slider img")
    slider_images.first.wait_for(state="visible")
    page.locator("#kernel-picture img").first.wait_for(state="visible")
    page.locator("#download a").first.wait_for(state="attached")
    assert slider_images.count() >= 2, "the slider shows both the blurry and the deblurred picture"
    assert "Estimated the blur and deblurred in" in page.locator("#report").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    assert not page.blocked, f"the page asked for outside resources: {page.blocked}"
    page.context.close()


def test_phone_width_stacks_the_columns(browser, server_url):
    page = offline_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(server_url)
    button = page.locator("#blind-run")
    button.wait_for(state="visible")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, "the button fits the screen width"
    results_box = page.locator("#result-slider").bounding_box()
    assert results_box is not None and results_box["y"] > box["y"], "results stack below the inputs on a phone"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-phone.png"), full_page=True)
    page.context.close()


def test_example_fills_the_sliders_and_runs(browser, server_url):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    open_tab(page, "Known kernel")
    page.get_by_text("coffee: σ 2.5 × 1.0 at 30°").click()
    page.locator("#known-photo img").first.wait_for(state="visible")
    assert page.locator("#known-sigma-major input[type=number]").input_value() == "2.5"
    assert page.locator("#known-sigma-minor input[type=number]").input_value() == "1"
    assert page.locator("#known-angle input[type=number]").input_value() == "30"
    page.locator("#known-run").click()
    page.locator("#report").get_by_text("σ 2.5 × 1 px at 30°").wait_for(state="visible")
    assert not page.blocked, f"the page asked for outside resources: {page.blocked}"
    page.context.close()


def test_corrupt_upload_shows_the_sentence(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really a picture")
    open_tab(page, "Known kernel")
    page.locator("#known-photo input[type=file]").set_input_files(corrupt)
    page.locator("#known-photo img").first.wait_for(state="attached")
    page.locator("#known-run").click()
    page.get_by_text("Could not read “broken.png” as a picture").first.wait_for(state="visible")
    page.context.close()


def test_kernel_file_source_swaps_the_controls_and_is_used(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    open_tab(page, "Known kernel")
    page.locator("#known-kernel-source").get_by_label("Kernel file").check()
    page.locator("#known-kernel-file").wait_for(state="visible")
    page.locator("#known-sigma-major").wait_for(state="hidden")
    np.save(tmp_path / "k9.npy", kernels.gaussian_kernel(2.0, 0.8, 45.0, size=9))
    page.locator("#known-kernel-file input[type=file]").set_input_files(tmp_path / "k9.npy")
    upload_photo(page, "known", write_photo(tmp_path / "leaf.png", 64, 64))
    page.locator("#known-run").click()
    page.locator("#report").get_by_text("9×9 kernel from k9.npy").wait_for(state="visible")
    page.locator("#known-kernel-preview img").first.wait_for(state="visible")  # the preview shows the file
    page.context.close()


def test_defocus_source_shows_its_radius_slider_and_is_used(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    open_tab(page, "Known kernel")
    page.locator("#known-defocus-radius").wait_for(state="hidden")
    page.locator("#known-kernel-source").get_by_label("Defocus disk (slider)").check()
    page.locator("#known-defocus-radius").wait_for(state="visible")
    page.locator("#known-sigma-major").wait_for(state="hidden")
    page.locator("#known-angle").wait_for(state="hidden")  # a disk has no direction
    set_number(page, "known-defocus-radius", "4.5")
    upload_photo(page, "known", write_photo(tmp_path / "soft.png", 64, 64))
    page.locator("#known-run").click()
    page.locator("#report").get_by_text("defocus disk, radius 4.5 px").wait_for(state="visible")
    page.context.close()


def test_out_of_focus_is_a_kind_of_blur_of_the_blind_tab(browser, server_url, tmp_path):
    from PIL import Image

    from bikanet_hf.image_io import load_rgb

    sharp = load_rgb(REPO_ROOT / "bikanet_hf" / "examples" / "chelsea_sharp.png")
    Image.fromarray(kernels.degrade(sharp, kernels.defocus_kernel(4.0))).save(tmp_path / "dreamy.png")
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    page.locator("#blind-blur-kind").get_by_label("Out of focus (a lens").check()
    upload_photo(page, "blind", tmp_path / "dreamy.png")
    page.locator("#blind-run").click()
    page.locator("#report").get_by_text("a lens out of focus: a disk of radius ≈ 4.0 px").wait_for(state="visible")
    page.context.close()


def test_kernelgan_refine_shows_its_steps_and_runs(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    page.locator("#blind-gan-steps").wait_for(state="hidden")
    page.locator("#blind-estimator").get_by_label("KernelGAN refine").check()
    page.locator("#blind-gan-steps").wait_for(state="visible")
    set_number(page, "blind-gan-steps", "50")
    upload_photo(page, "blind", write_photo(tmp_path / "gan.png", 96, 128))
    page.locator("#blind-run").click()
    page.locator("#report").get_by_text("estimated by KernelGAN refine").wait_for(state="visible")
    page.context.close()


def test_blur_that_changes_across_the_photo_is_an_option_of_the_blind_tab(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    page.locator("#blind-varying").get_by_label("Blur changes across the photo").check()
    page.locator("#blind-photo input[type=file]").set_input_files(write_photo(tmp_path / "varying.png", 96, 128))
    page.locator("#blind-photo img").first.wait_for(state="visible")
    page.locator("#blind-run").click()
    # a photo smaller than one tile (256 px for soft blur, a lens's disk): the report says one kernel was used (the
    # checkbox reached the handler)
    page.locator("#report").get_by_text("fits in one 256-px tile").wait_for(state="visible")
    page.context.close()


def test_noise_level_box_is_empty_until_set_and_reaches_the_model(browser, server_url, tmp_path):
    page = offline_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(server_url)
    open_tab(page, "Known kernel")
    box = page.locator("#known-noise-level").get_by_role("textbox")
    box.wait_for(state="visible")
    assert box.input_value() == ""  # empty: measured
    page.locator("#known-photo input[type=file]").set_input_files(write_photo(tmp_path / "grain.png", 64, 64))
    page.locator("#known-photo img").first.wait_for(state="visible")
    page.locator("#known-run").click()
    page.locator("#report").get_by_text("grey levels, measured").wait_for(state="visible")
    box.fill("4")
    box.press("Enter")
    page.locator("#known-run").click()
    page.locator("#report").get_by_text("σ = 4.0 grey levels, as you set it").wait_for(state="visible")
    page.context.close()
