"""report.html: self-contained, and checked in headless Chromium (no console errors, the plots render)."""

from __future__ import annotations

import base64
import copy
import io
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from tinyml_ptq.pipeline.report_html import memory_parts, render_report_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed ('make apt' installs it)")

# Solid fills of the bar plots (report_html.py), as Chromium paints them at 100 % zoom.
LAYER_ERROR_BLUE = (0x4C, 0x72, 0xB0)
LATENCY_GREEN = (0x55, 0xA8, 0x68)
WEIGHTS_ORANGE = (0xDD, 0x84, 0x52)


def chromium(page: Path, screenshot: Path | None = None) -> list[str]:
    """Load `page` in headless Chromium; return its console messages (the report has no scripts, so any is wrong)."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1280,2400",
               "--hide-scrollbars",
               # Headless Chromium exits once it has taken the screenshot (without one it keeps running).
               f"--screenshot={screenshot or Path(profile) / 'page.png'}"]
        cmd.append(page.resolve().as_uri())
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=90)
        finally:
            # Chromium's helper processes (zygote, renderer) share its process group and may outlive it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return [line for line in output.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _pixels(png: Path) -> tuple[Image.Image, dict[tuple[int, int, int], int]]:
    image = Image.open(png).convert("RGB")
    counts = {colour: n for n, colour in image.getcolors(maxcolors=1 << 24)}
    return image, counts


@pytest.fixture(scope="module")
def report(digits_deployed) -> dict:
    return digits_deployed.report


@pytest.mark.slow
def test_report_is_one_self_contained_file(digits_deployed):
    html = digits_deployed.report_html.read_text()
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", html)  # base64 may spell anything
    assert not re.search(r"https?:|ftp:|href=|<script|<link|<iframe|<object|@import|url\(", text, re.IGNORECASE)
    sources = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(sources) == 4  # per-layer error, latency, memory, confusion matrix (digits has labels)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.format == "PNG" and image.width >= 300 and image.height >= 150
    s = digits_deployed.report["summary"]
    assert f"{s['latency_mean']:,.0f} instructions" in html
    for row in digits_deployed.report["op_table"]:
        assert f"<td>{row['op']}</td>" in html


@pytest.mark.slow
@needs_chromium
def test_report_loads_in_chromium_without_console_errors_and_shows_the_plots(digits_deployed, tmp_path):
    shot = tmp_path / "report.png"
    assert chromium(digits_deployed.report_html, shot) == []
    image, colours = _pixels(shot)
    assert image.size == (1280, 2400)
    # The bar colours of three plots are painted over thousands of pixels: the PNGs decoded and show.
    for colour in (LAYER_ERROR_BLUE, LATENCY_GREEN, WEIGHTS_ORANGE):
        assert colours.get(colour, 0) > 2000, f"plot colour {colour} covers {colours.get(colour, 0)} pixels"

    # Without its images the same page is nearly monochrome: the colours above come from the plots.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""',
                           digits_deployed.report_html.read_text()))
    bare_shot = tmp_path / "bare.png"
    chromium(bare, bare_shot)
    _, bare_colours = _pixels(bare_shot)
    assert all(bare_colours.get(c, 0) == 0 for c in (LAYER_ERROR_BLUE, LATENCY_GREEN, WEIGHTS_ORANGE))
    assert len(colours) > 2 * len(bare_colours)


@needs_chromium
def test_console_check_catches_a_script_error(tmp_path):
    """The console check above can fail: a page with a script error is reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>not_defined_anywhere();</script></body></html>")
    messages = chromium(page)
    assert any("not_defined_anywhere" in m for m in messages), messages


@pytest.mark.slow
def test_report_without_labels_or_layer_table(report):
    no_labels = copy.deepcopy(report)
    no_labels["confusion_matrix"] = None
    for row in no_labels["op_table"]:
        row["rmse"] = row["rmse_over_scale"] = None
    html = render_report_html(no_labels)
    assert len(re.findall(r"<img ", html)) == 2  # latency and memory
    assert "Confusion matrix" not in html and "do not line up op by op" in html


@pytest.mark.slow
def test_memory_parts_add_up_to_the_build(report):
    parts = memory_parts(report)
    b = report["build"]
    assert sum(size for _, size in parts["flash"]) == b["flash_bytes"]
    assert sum(size for _, size in parts["RAM"]) == b["ram_bytes"]
    assert dict(parts["RAM"])["arena"] == b["arena_bytes"]
    assert dict(parts["flash"])["weights"] == report["generate"]["weights_bytes"]


@pytest.mark.slow
def test_names_from_the_model_are_escaped(report):
    hostile = copy.deepcopy(report)
    hostile["op_table"][0]["output"] = '<script>alert(1)</script>'
    hostile["model"]["path"] = '"><img src=x onerror=alert(1)>'
    html = render_report_html(hostile)
    assert "<script>alert" not in html and "<img src=x" not in html
