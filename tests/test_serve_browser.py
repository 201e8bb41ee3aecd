"""kerascnn serve's page in a real browser: Playwright for Python driving the system Chromium (Debian's
`chromium` package; Playwright's own browser download is not used). The shipped cnn and cnn_bn on
real MNIST, served by uvicorn on 127.0.0.1 in this process.

Each test saves a screenshot under $KERASCNN_SCREENSHOTS (default runs/serve_screenshots/), to look at.
Without Chromium these tests skip, saying how to install it.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support import needs_mnist, needs_pretrained

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package only)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [needs_mnist, needs_pretrained,
              pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium: apt-get install -y chromium")]
SHOTS = Path(os.environ.get("KERASCNN_SCREENSHOTS", "runs/serve_screenshots"))


@pytest.fixture(scope="module")
def url():
    """The page's address: cnn and cnn_bn on MNIST behind uvicorn on a free loopback port."""
    import uvicorn

    from kerascnn import SAVED_MODELS
    from kerascnn.serve import build, create_app

    server = build([SAVED_MODELS / "cnn", SAVED_MODELS / "cnn_bn"])
    web = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=0, log_level="error",
                                        lifespan="off"))
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    while not web.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{web.servers[0].sockets[0].getsockname()[1]}/"
    web.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    page.close()
    assert not errors, errors


def settle(page, before: str | None = None, timeout: float = 30_000):
    """Waits until the page has drawn its columns again (body[data-ready] changes) and the requests stop."""
    page.wait_for_function("b => document.body.dataset.ready && document.body.dataset.ready !== b", arg=before,
                           timeout=timeout)
    page.wait_for_load_state("networkidle")
    return page.evaluate("document.body.dataset.ready")


def bars(page, model: str) -> list[str]:
    return page.locator(f'.card[data-model="{model}"] .bars .value').all_inner_texts()


def test_drawing_a_stroke_changes_the_prediction_bars(page, url):
    page.goto(url + "#models=cnn")
    ready = settle(page)
    blank = bars(page, "cnn")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 140, box["y"] + 50)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + 140, box["y"] + 50 + 18 * step)
    page.mouse.up()
    settle(page, ready)
    drawn = bars(page, "cnn")
    assert len(drawn) == 10 and drawn != blank
    assert "draw=" in page.url  # the drawing is in the link


def test_picking_the_first_test_7_shows_what_kerascnn_evaluate_predicts(page, url):
    import kerascnn as kc
    from kerascnn.data.tasks import Task

    _, labels = Task().test()
    first = int(np.flatnonzero(labels == 7)[0])
    expected = str(kc.evaluate().evaluation.predictions[first])
    page.goto(url + "#models=cnn")
    settle(page)
    page.click('#input-tabs button[data-source="test"]')
    page.select_option("#pick-class", "7")
    page.wait_for_selector(f'#thumbs figure[data-index="{first}"]')
    ready = page.evaluate("document.body.dataset.ready")
    page.locator("#thumbs figure").first.click()
    settle(page, ready)
    assert page.locator('.card[data-model="cnn"] .verdict span').first.inner_text() == expected
    assert f"index={first}" in page.url
    assert page.locator("#input-note").inner_text().startswith(f"test image {first}")


def test_a_slow_answer_for_an_earlier_class_does_not_replace_the_later_pick(page, url):
    """The test tab asks for class 0's thumbnails; picking 7 right after asks for 7's. Class 0's answer is held
    back until 7's has been drawn: the page must keep showing the 7s (it used to show whichever landed last)."""
    from kerascnn.data.tasks import Task

    _, labels = Task().test()
    sevens = {str(i) for i in np.flatnonzero(labels == 7)[:48]}
    held = []

    def hold_class_0(route):
        if "class=0" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.goto(url + "#models=cnn")
    settle(page)
    page.route("**/api/images?*", hold_class_0)
    page.click('#input-tabs button[data-source="test"]')
    page.select_option("#pick-class", "7")
    page.wait_for_selector(f'#thumbs figure[data-index="{min(sevens, key=int)}"]')
    assert held, "the tab click did not ask for class 0"
    for route in held:
        route.continue_()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    shown = set(page.eval_on_selector_all("#thumbs figure", "fs => fs.map(f => f.dataset.index)"))
    assert shown == sevens


def test_moving_the_eps_slider_changes_the_adversarial_image_and_the_prediction(page, url):
    page.goto(url + "#models=cnn&view=attack&source=test&index=0&eps=0")
    ready = settle(page)
    card = page.locator('.card[data-model="cnn"]')
    image_before = card.locator("img[alt^='FGSM']").get_attribute("src")
    bars_before = bars(page, "cnn")
    page.eval_on_selector("#ctl-eps", "e => { e.value = '0.25'; e.dispatchEvent(new Event('input')); "
                                      "e.dispatchEvent(new Event('change')); }")
    settle(page, ready)
    page.wait_for_function("() => document.querySelector(\"img[alt='FGSM eps 0.25']\")")
    assert card.locator("img[alt^='FGSM']").get_attribute("src") != image_before
    assert bars(page, "cnn") != bars_before
    assert "eps=0.25" in page.url


def test_the_compare_view_shows_two_models_side_by_side(page, url):
    page.goto(url + "#source=test&index=3&view=explain&method=gradcam")
    settle(page)
    page.wait_for_selector('.card[data-model="cnn_bn"] img.map')
    models = page.locator("#columns > .card").evaluate_all("cards => cards.map(c => c.dataset.model)")
    assert models == ["cnn", "cnn_bn"]
    assert page.locator(".card img.map").count() == 2


def test_pgd_runs_as_a_job_with_progress_and_shows_its_image(page, url):
    page.goto(url + "#models=cnn&view=attack&source=test&index=0&attack=pgd&eps=0.3")
    settle(page)
    page.click("#run")
    page.wait_for_selector('.card[data-model="cnn"] img[alt^="PGD"]', timeout=60_000)
    assert page.locator('.card[data-model="cnn"] .stat').first.inner_text().startswith("L∞ 0.3")


def test_a_link_reopens_the_same_view(page, url):
    page.goto(url + "#models=cnn&view=inside&source=test&index=11&layer=conv2")
    settle(page)
    assert page.locator(".strip figure.on figcaption").inner_text().startswith("conv2")
    assert page.locator(".maps figure").count() == 32


def test_an_uploaded_picture_is_shown_as_the_model_receives_it(page, url, tmp_path):
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (200, 300), "white")  # dark ink on light paper: inverted and framed like MNIST
    ImageDraw.Draw(picture).line([(100, 40), (100, 260)], fill="black", width=24)
    picture.save(tmp_path / "one.png")
    page.goto(url + "#models=cnn")
    ready = settle(page)
    page.click('#input-tabs button[data-source="upload"]')
    page.set_input_files("#upload", str(tmp_path / "one.png"))
    settle(page, ready)
    assert page.locator('.card[data-model="cnn"] .verdict span').first.inner_text() == "1"
    assert page.locator("#input-note").inner_text() == "your picture"


def test_save_json_and_png_keep_the_view(page, url):
    import json

    page.goto(url + "#models=cnn&view=explain&source=test&index=4&method=gradcam")
    settle(page)
    with page.expect_download() as download:
        page.click("#save-json")
    saved = json.loads(open(download.value.path()).read())
    assert saved["state"]["method"] == "gradcam" and "index=4" in saved["link"]
    assert saved["answers"]["cnn"]["explain"]["method"] == "gradcam"
    with page.expect_download() as download:
        page.click("#save-png")
    assert open(download.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
