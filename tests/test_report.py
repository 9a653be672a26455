"""The report (output/index.html): links that resolve, missing files shown as such, cached turntables,
and the page opened in headless Chromium with every picture loading."""
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytorch3d.utils import ico_sphere

import report as report_script
from browser import CHROMIUM
from utils.io.files import save_json, save_text
from utils.io.images import read_image_array, save_image
from utils.io.landmarks import save_landmarks
from utils.io.mesh import Mesh, save_obj
from utils.report.page import flatten, format_value, summary_metrics, write_report
from utils.report.pictures import TurntableSettings, is_full_circle

ROOT = Path(__file__).resolve().parents[1]
SMALL_TURNTABLE = TurntableSettings(azimuths=(-60.0, -20.0, 20.0, 60.0), image_size=32, frame_ms=100)
IMAGE_SIZE = 48


def _face_points(size):
    """(68, 2) pixel (x, y) points inside a square image of ``size``, jaw ends left and right."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return np.stack([size / 2 + size / 3 * np.cos(angles), size / 2 + size / 3 * np.sin(angles)], axis=1)


def _picture(seed):
    """A small (IMAGE_SIZE, IMAGE_SIZE, 3) image in [0, 1]: a gradient from a colour of its own to white."""
    colour = np.random.default_rng(seed).random(3)
    ramp = np.linspace(0.0, 1.0, IMAGE_SIZE)[:, None, None]
    return (colour * (1 - ramp) + ramp).repeat(IMAGE_SIZE, axis=1).astype(np.float32)


@pytest.fixture
def fake_run(tmp_path):
    """example/ and output/ of a tiny run: pair head x ink complete, head x "oil paint" interrupted after one view,
    head x wax failed before writing anything (known only from the batch's failures)."""
    content, style, output = tmp_path / "example/content/head", tmp_path / "example/style", tmp_path / "output"
    for k in range(2):
        save_image(content / f"view_{k}.png", _picture(k))
        save_landmarks(content / f"landmarks_{k}.txt", _face_points(IMAGE_SIZE))
    for seed, name in enumerate(["ink", "oil paint", "wax"]):
        save_image(style / f"{name}.png", _picture(10 + seed))
    save_landmarks(style / "ink.txt", _face_points(IMAGE_SIZE))
    done = output / "head/ink"
    sphere = ico_sphere(1)
    verts = sphere.verts_packed()
    mesh = Mesh(verts=verts, faces=sphere.faces_packed(), colors=(verts + 1) / 2)
    save_obj(done / "mesh.obj", mesh)
    save_obj(done / "mesh_smooth.obj", mesh.with_verts(verts * 0.9))
    for k in range(2):
        save_image(done / f"stylized_{k}.png", _picture(20 + k))
        save_image(done / f"unwarped_{k}.png", _picture(30 + k))
    save_image(done / "intermediate/loss_curves.png", _picture(40))
    save_image(done / "intermediate/keypoints_view1.png", _picture(41))
    save_json(done / "metrics.json", {"psnr_db": [30.0, 32.0], "flipped_face_share": 0.0125,
                                      "displacement_rel_bbox": {"mean": 0.01, "max": 0.05},
                                      "image_metrics_region": "footprint <eroded>"})
    save_json(done / "params.json", {"style": "ink", "settings": {"iterations": 3}})
    save_json(done / "complete.json", {"seconds": 1.5})
    save_image(output / "head/oil paint/stylized_0.png", _picture(50))
    failures = {("head", "wax"): "InputError: wax.txt missing"}
    return tmp_path, failures


def _report(root, failures, turntable=SMALL_TURNTABLE, viewer=True):
    return write_report(root / "output", root / "example/content", root / "example/style", turntable=turntable,
                        failures=failures, device="cpu", viewer=viewer)


def assert_rewritten_only_when_stale(report, made, source):
    """``report()`` leaves ``made`` alone while it is newer than ``source``, and writes it again once it is not."""
    before = made.stat().st_mtime_ns
    report()
    assert made.stat().st_mtime_ns == before
    later = made.stat().st_mtime + 10
    os.utime(source, (later, later))
    report()
    assert made.stat().st_mtime_ns != before


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
