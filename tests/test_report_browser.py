"""report.html in a real headless Chromium (Debian's, installed by ``make test``), opened straight from disk."""

from __future__ import annotations

import shutil

import pytest

from media_clips import write_clip
from test_report import prediction

from avloc.report.write import write_video_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (make test installs Debian's)")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    root = tmp_path_factory.mktemp("browser")
    clip = write_clip(root / "clip_a.mp4", 4.0)
    folder = write_video_report(prediction(clip), root / "out")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        pg = browser.new_page()
        pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto((folder / "report.html").as_uri())
        pg.wait_for_function("document.getElementById('video').readyState >= 1", timeout=15000)
        yield pg, errors
        browser.close()


def test_video_loads_with_its_duration_and_no_console_error(page):
    pg, errors = page
    assert abs(pg.evaluate("document.getElementById('video').duration") - 4.0) < 0.15
    assert pg.evaluate("document.getElementById('video').error") is None
    assert errors == []


def test_clicking_an_event_seeks_to_its_start(page):
    pg, errors = page
    pg.click("ul.pred button[data-start='1.000']")
    pg.wait_for_function("Math.abs(document.getElementById('video').currentTime - 1.0) < 0.05", timeout=5000)
    pg.click("ul.gt button[data-start='1.500']")
    pg.wait_for_function("Math.abs(document.getElementById('video').currentTime - 1.5) < 0.05", timeout=5000)
    assert errors == []


def test_playhead_follows_playback(page):
    pg, errors = page
    pg.evaluate("(() => { const v = document.getElementById('video'); v.muted = true; v.currentTime = 0; })()")
    pg.wait_for_timeout(200)
    before = pg.evaluate("parseFloat(document.getElementById('playhead').style.left)")
    pg.evaluate("document.getElementById('video').play()")
    pg.wait_for_function("document.getElementById('video').currentTime > 1.0", timeout=10000)
    after = pg.evaluate("parseFloat(document.getElementById('playhead').style.left)")
    assert before == pytest.approx(13.0, abs=0.5)  # time 0 sits at the axis' left edge (13 % of the width)
    assert after > before + 2  # > 1 s of a 4-s clip moves it by > 2 % of the width
    assert errors == []
