"""The report (output/index.html): links that resolve, missing files shown as such, cached turntables,
and the page opened in headless Chromium with every picture loading."""
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import report as report_script
from tests.browser import CHROMIUM
from tests.synthetic import assert_rewritten_only_when_stale
from utils.io.files import save_text
from utils.io.images import read_image_array
from utils.report.page import flatten, format_value, summary_metrics, write_report
from utils.report.pictures import TurntableSettings, is_full_circle

ROOT = Path(__file__).resolve().parents[1]
SMALL_TURNTABLE = TurntableSettings(azimuths=(-60.0, -20.0, 20.0, 60.0), image_size=32, frame_ms=100)


def _report(root, failures, turntable=SMALL_TURNTABLE, viewer=True):
    return write_report(root / "output", root / "example/content", root / "example/style", turntable=turntable,
                        failures=failures, device="cpu", viewer=viewer)


def _links(page):
    """Every src and href of the page that is not an in-page anchor, unquoted."""
    return [urllib.parse.unquote(link) for link in re.findall(r'(?:src|href)="([^"#][^"]*)"', page)]


def test_report_links_resolve_and_shows_every_pair_in_its_state(fake_run):
    root, failures = fake_run
    index = _report(root, failures)
    page = index.read_text()
    links = _links(page)
    assert links and all((index.parent / link).exists() for link in links), links
    assert not any(link.startswith(("/", "http", "file:")) for link in links)
    for expected in ["../example/content/head/view_1.png", "head/ink/stylized_1.png", "head/ink/turntable.png",
                     "head/ink/turntable_smooth.png", "head/ink/intermediate/loss_curves.png",
                     "head/ink/intermediate/keypoints_view1.png",
                     "report_files/style/ink.png", "report_files/content/head/landmarks_0.png"]:
        assert expected in links, expected
    for state in ["complete", "incomplete", "failed"]:
        assert f'class="state {state}"' in page
    assert page.count('<section class="pair"') == 3
    assert "missing: unwarped_0.png" in page and "missing: turntable.png" in page
    assert "InputError: wax.txt missing" in page and "no landmarks (oil paint.txt missing)" in page
    assert "footprint &lt;eroded&gt;" in page and page.count("<script") == 1  # the 3D viewer's
    assert "<th>displacement_rel_bbox.max</th><td>0.05</td>" in page
    assert 'src="head/oil%20paint/stylized_0.png"' in page


def test_turntable_strip_is_one_render_per_azimuth_and_is_cached(fake_run):
    root, failures = fake_run
    _report(root, failures)
    folder = root / "output/head/ink"
    strip = read_image_array(folder / "turntable.png")
    assert strip.shape == (32, 4 * 32, 3)
    frames = strip.reshape(32, 4, 32, 3).transpose(1, 0, 2, 3)
    assert all((frame < 0.95).any() for frame in frames)  # the mesh is in every view, not just background
    assert not np.allclose(frames[0], frames[1])  # the views differ
    with Image.open(folder / "turntable.gif") as gif:
        assert gif.n_frames == 4 + 2  # the arc swings back: 0 1 2 3 2 1
    assert (folder / "turntable_smooth.gif").is_file()
    assert_rewritten_only_when_stale(lambda: _report(root, failures), folder / "turntable.png", folder / "mesh.obj")


def test_unreadable_files_are_noted_not_fatal(fake_run):
    root, failures = fake_run
    folder = root / "output/head/ink"
    save_text(folder / "metrics.json", "{not json")
    save_text(folder / "mesh.obj", "v 0 0 0\nf 1 2 3\n")
    save_text(root / "example/style/ink.txt", "1 2\n")
    page = _report(root, failures).read_text()
    assert "metrics.json: not valid JSON" in page
    assert "turntable of mesh.obj not rendered" in page
    assert "ink.txt" in page and "with its landmarks" not in page.split('id="head--ink"')[1].split("</section>")[0]


def test_metric_values_are_flattened_and_formatted():
    data = {"psnr_db": [30.0, float("nan")], "share": 0.123456, "stats": {"mean": 1, "max": {"deep": True}}}
    assert [key for key, _ in flatten(data)] == ["psnr_db", "share", "stats.mean", "stats.max.deep"]
    assert format_value([30.0, float("nan")]) == "30, nan"
    assert format_value(0.123456) == "0.1235" and format_value({"a": 1}) == json.dumps({"a": 1})
    assert summary_metrics(data) == {"psnr_db": 30.0, "share": 0.123456}


def test_full_circle_turntables_loop_and_arcs_swing():
    assert is_full_circle(TurntableSettings(azimuths=tuple(range(-180, 180, 45))))
    assert not is_full_circle(TurntableSettings())


def test_report_script_names_a_missing_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["report.py", "--output", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as stop:
        report_script.main()
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and "nowhere" in error


def test_report_script_writes_the_page(fake_run, monkeypatch, capsys):
    root, _ = fake_run
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["report.py", "--azimuths", "0", "90", "--size", "24", "--no-gif"])
    report_script.main()
    assert "output/index.html" in capsys.readouterr().out
    assert read_image_array(root / "output/head/ink/turntable.png").shape == (24, 48, 3)
    assert not (root / "output/head/ink/turntable.gif").exists()
    overview = read_image_array(root / "output/overview.png")  # views and style in a row, the turntable below
    assert overview.shape[0] > 256 and overview.shape[1] >= 3 * 256 * 0.5


def _chromium(user_dir, *arguments):
    """Run headless Chromium with a fresh profile and no network; returns its stdout."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={user_dir}", "--virtual-time-budget=5000"]
    result = subprocess.run([CHROMIUM, *flags, *arguments], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, f"{CHROMIUM} failed: {result.stderr[-2000:]}"
    return result.stdout


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium)")
def test_every_picture_loads_in_headless_chromium(fake_run, tmp_path):
    root, failures = fake_run
    index = _report(root, failures, viewer=False)  # WebGL has its own test (test_viewer.py)
    page = index.read_text()
    expected = page.count("<img ")
    marker = ("<script>window.addEventListener('load', () => { for (const img of document.images) "
              "{ img.dataset.width = img.naturalWidth; } });</script>")
    probe = index.with_name("probe.html")
    probe.write_text(page.replace('loading="lazy"', 'loading="eager"').replace("</body>", marker + "</body>"))
    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", probe.as_uri())
    loaded = re.findall(r'<img [^>]*src="([^"]*)"[^>]*data-width="(\d+)"', dom)
    assert len(loaded) == expected > 10, dom[:2000]
    broken = [src for src, width in loaded if int(width) == 0]
    assert not broken, f"pictures that did not load: {broken}"
    screenshot = tmp_path / "report.png"
    _chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1280,2000", index.as_uri())
    assert read_image_array(screenshot).shape == (2000, 1280, 3)
    shutil.copy(screenshot, "/tmp/report_screenshot.png")
