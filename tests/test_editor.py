"""The landmark editor (correspondences.py --edit): flagged images first, a drag in headless Chromium saved to the
landmark file and nothing else, bad saves refused with the file untouched, pairs made with it marked incomplete,
Ctrl-C stopping the server."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import correspondences
from tests.browser import browser_page, needs_browser
from tests.synthetic import picture
from utils.errors import InputError
from utils.io.files import save_json
from utils.io.images import save_image
from utils.io.landmarks import save_landmarks
from utils.landmarks.editor import find_items, load_checks, make_server, parse_points, record_checks

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 48  # the pictures' side


def _face_points(size):
    """(68, 2) pixel (x, y) points in rows of 17 inside a square image of ``size``; the jaw's ends (points 0 and
    16) side by side as on an upright face, so that the loader reads them as x, y."""
    index = np.arange(68)
    return np.stack([size * (0.1 + 0.045 * (index % 17)), size * (0.2 + 0.15 * (index // 17))], axis=1)


@pytest.fixture
def landmark_folders(tmp_path):
    """style/{ink,wax}.png with landmarks (wax flagged to check by eye), content/head/view_0.png with its
    landmarks, and complete output pairs head x ink and head x wax."""
    style, content, output = tmp_path / "style", tmp_path / "content/head", tmp_path / "output"
    for seed, name in enumerate(["ink", "wax"]):
        save_image(style / f"{name}.png", picture(seed))
        save_landmarks(style / f"{name}.txt", _face_points(IMAGE_SIZE))
        save_json(output / "head" / name / "complete.json", {"seconds": 1})
    record_checks(style / "wax.txt", ["wax.png: weak face detection, check by eye"])
    save_image(content / "view_0.png", picture(5))
    save_landmarks(content / "landmarks_0.txt", _face_points(IMAGE_SIZE))
    return tmp_path


@pytest.fixture
def editor(landmark_folders):
    """The editor serving landmark_folders in a thread; yields (base URL, root folder)."""
    root = landmark_folders
    server = make_server(find_items(root / "content", root / "style"), root / "output", correspondences.WORKING_MAX_SIDE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_items_list_flagged_first_then_styles_then_views(landmark_folders):
    items = find_items(landmark_folders / "content", landmark_folders / "style")
    assert [item.name for item in items] == ["wax", "ink", "head view 0"]
    assert items[0].flags and not items[1].flags
    assert [item.name for item in find_items(landmark_folders / "content", landmark_folders / "style", {"head"})] \
        == ["head view 0"]


def test_checks_are_recorded_and_cleared(tmp_path):
    path = tmp_path / "a.txt"
    record_checks(path, ["weak"])
    assert load_checks(path) == ["weak"]
    record_checks(path, [])
    assert load_checks(path) == [] and json.loads((tmp_path / "overlays/check_by_eye.json").read_text()) == {}


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"points": [[1, 1]] * 67}).encode(), "68 pairs"),
    (json.dumps({"points": [[1, True]] * 68}).encode(), "68 pairs"),
    (b'{"points": [' + b",".join([b"[NaN, 1]"] * 68) + b"]}", "not valid JSON"),
    (json.dumps({"points": [[1, 1]] * 67 + [[1, 48]]}).encode(), "point 67 (1, 48) lies outside"),
    (json.dumps({"points": [[5, 5]] * 68}).encode(), "lie within 0 px of one place"),  # load_landmarks refuses it
])
def test_bad_points_are_refused_with_a_reason(body, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_points(body, (IMAGE_SIZE, IMAGE_SIZE))


def _post(url, body, content_type="application/json"):
    """POST ``body``; returns (status, JSON answer)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_malformed_saves_are_refused_and_change_nothing(editor):
    url, root = editor
    landmarks = root / "style/wax.txt"
    before = landmarks.read_bytes(), landmarks.stat().st_mtime_ns
    for body in [b"[]", json.dumps({"points": [[0, 0]] * 68 + [[0, 0]]}).encode(),
                 json.dumps({"points": [[0, 0]] * 67 + [[-3, 0]]}).encode()]:
        status, answer = _post(f"{url}/api/save/0", body)
        assert status == 400 and answer["error"].startswith("not saved:"), answer
    good = json.dumps({"points": [[1, 1]] * 68}).encode()
    status, answer = _post(f"{url}/api/save/0", good, "text/plain")  # what another site's page could send
    assert status == 400 and "Content-Type: application/json" in answer["error"]
    assert _post(f"{url}/api/save/9", b"{}")[0] == 404
    assert (landmarks.read_bytes(), landmarks.stat().st_mtime_ns) == before
    assert (root / "output/head/wax/complete.json").is_file()
    assert load_checks(landmarks)


@needs_browser
def test_drag_undo_and_save_in_the_browser(editor):
    url, root = editor
    landmarks = root / "style/wax.txt"
    lines_before = landmarks.read_text().splitlines()
    with browser_page() as page:
        page.goto(url)
        dot = page.locator('circle[data-index="30"]')
        dot.wait_for()
        assert page.locator("#list button").first.inner_text().startswith("check style: wax")
        _drag(page, page.locator('circle[data-index="5"]'), 30, 30)
        page.click("#undo")  # point 5 goes back
        _drag(page, dot, 40, 0)
        if os.environ.get("RRPS_KEEP_SCREENSHOTS"):
            page.screenshot(path="/tmp/editor_after_drag.png")
        page.click("#save")
        page.wait_for_selector("#status.ok")
        assert "1 output pair(s) to redo" in page.inner_text("#status")
    assert not page.errors, page.errors
    lines_after = landmarks.read_text().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(lines_before, lines_after)) if a != b]
    assert len(lines_after) == 68 and changed == [30], changed
    (x0, y0), (x1, y1) = (np.array(lines[30].split(), float) for lines in (lines_before, lines_after))
    scale = 640 / IMAGE_SIZE  # the page shows the picture 640 pixels wide
    assert abs((x1 - x0) - 40 / scale) < 0.5 and abs(y1 - y0) < 0.5
    assert (root / "style/overlays/wax.png").is_file() and not load_checks(landmarks)
    assert not (root / "output/head/wax/complete.json").exists()  # the pair made with wax is to redo
    assert (root / "output/head/ink/complete.json").is_file()


def _drag(page, locator, dx, dy):
    """Press on the element's centre, move by (dx, dy) screen pixels in steps, release."""
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


@pytest.mark.slow
def test_edit_flag_serves_until_ctrl_c(landmark_folders):
    root = landmark_folders
    command = [sys.executable, "correspondences.py", "--edit", "wax", "--content", str(root / "content"),
               "--style", str(root / "style"), "--output", str(root / "output")]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        address = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert address and "1 images, 1 flagged" in line, line
        with urllib.request.urlopen(address[0] + "api/items", timeout=30) as response:
            assert [item["name"] for item in json.loads(response.read())] == ["wax"]
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_edit_with_nothing_to_edit_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["correspondences.py", "--edit", "--content", str(tmp_path),
                                      "--style", str(tmp_path)])
    with pytest.raises(SystemExit) as stop:
        correspondences.main()
    assert stop.value.code == 2 and "no image with a landmark file" in capsys.readouterr().err


def _get(url, host=None):
    """GET ``url`` (with a Host header when given); returns (status, body bytes)."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_a_phone_photo_is_served_upright_with_its_upright_size(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20, 0] = 255  # stored on its side: the red half is the top of the picture a viewer shows
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: turn a quarter clockwise to show
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif)
    save_landmarks(tmp_path / "phone.txt", _face_points(20))
    server = make_server(find_items(tmp_path / "content", tmp_path), tmp_path / "output", 64)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        status, body = _get(f"{url}/api/items")
        assert status == 200 and [(i["width"], i["height"]) for i in json.loads(body)] == [(20, 40)]
        status, body = _get(f"{url}/image/0")
    finally:
        server.shutdown()
        server.server_close()
    with Image.open(io.BytesIO(body)) as served:
        assert status == 200 and served.getexif().get(0x0112, 1) == 1 and served.size == (20, 40)
        shown = np.asarray(served.convert("RGB"))
    assert shown[:20, :, 0].mean() > 200 and shown[20:, :, 0].mean() < 50


def test_every_request_under_a_foreign_host_is_refused(editor):
    url, root = editor
    for path in ["/", "/api/items", "/image/0", "/nowhere"]:  # DNS rebinding: another site's name for 127.0.0.1
        status, body = _get(url + path, host="evil.example")
        assert status == 400 and b"unexpected Host" in body and str(root).encode() not in body, (path, body)
    assert _get(url + "/api/items", host="localhost")[0] == 200


def test_simultaneous_saves_all_get_an_answer(editor):
    url, root = editor
    points = _face_points(IMAGE_SIZE)
    bodies = [json.dumps({"points": (points + 0.01 * n).tolist()}).encode() for n in range(8)]
    answers = [None] * len(bodies)

    def save(n):
        answers[n] = _post(f"{url}/api/save/0", bodies[n])

    threads = [threading.Thread(target=save, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [status for status, _ in answers] == [200] * len(bodies), answers
    saved = np.loadtxt(root / "style/wax.txt")
    assert any(np.allclose(saved, points + 0.01 * n, atol=1e-3) for n in range(len(bodies)))
    assert not list(root.rglob("*.tmp-*")) and not load_checks(root / "style/wax.txt")


def test_a_save_on_a_damaged_image_is_refused_before_anything_is_written(editor):
    url, root = editor
    image, landmarks = root / "style/wax.png", root / "style/wax.txt"
    image.write_bytes(image.read_bytes()[:60])  # the header says 48x48, the pixels are gone
    before = landmarks.read_bytes()
    status, answer = _post(f"{url}/api/save/0", json.dumps({"points": _face_points(IMAGE_SIZE).tolist()}).encode())
    assert status == 400 and answer["error"].startswith("not saved:") and "wax.png" in answer["error"], answer
    assert landmarks.read_bytes() == before and (root / "output/head/wax/complete.json").is_file()


def test_hostile_requests_each_get_an_answer(editor):
    import socket

    url, _ = editor
    status, answer = _post(f"{url}/api/save/0", b"[" * 30000 + b"]" * 30000)
    assert status == 400 and "not saved" in answer["error"]
    port = int(url.rsplit(":", 1)[1])
    for path in [b"/image/\xb2", b"/image/\xff\xfe", b"/api/save/\xb9", b"/\x80"]:  # not UTF-8 ("\xb2" is a digit)
        for method in [b"GET", b"POST"]:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                connection.sendall(method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
                reply = connection.recv(200)
            assert reply.startswith(b"HTTP/1.0 404"), (method, path, reply)


def test_atomic_paths_written_at_once_get_their_own_temporary_names(tmp_path):
    from utils.io.files import atomic_path, sweep_temporaries

    target = tmp_path / "same.txt"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("one")
        second.write_text("two")
        assert sweep_temporaries(tmp_path) == []  # this process is alive: its files stay
    assert target.read_text() == "one" and not list(tmp_path.glob("*.tmp-*"))
