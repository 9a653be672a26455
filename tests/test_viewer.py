"""The report's 3D viewer: .glb files with their colours, written when stale; in headless Chromium (software
WebGL, page opened from file://) a pair's views show the head and a drag turns both of them."""
import json
import os

import numpy as np
import trimesh
from pytorch3d.utils import ico_sphere

from browser import browser_page, needs_browser, screenshot_array
from test_report import assert_rewritten_only_when_stale, fake_run  # noqa: F401  (fake_run is a fixture)
from utils.io.mesh import Mesh, load_mesh, save_obj
from utils.io.layout import ContentFolder
from utils.report.glb import glb_script_path, save_glb
from utils.report.page import write_report

BACKGROUND = np.array([0xEE, 0xEE, 0xFF]) / 255.0  # the model-viewer boxes' background colour in page.py


def _add_input_mesh(root):
    """example/models/head.obj for the fake run: a coarse sphere coloured by position."""
    sphere = ico_sphere(2)
    verts = sphere.verts_packed()
    save_obj(root / "example/models/head.obj", Mesh(verts=verts, faces=sphere.faces_packed(), colors=(verts + 1) / 2))


def _report(root, failures):
    """The fake run's report without turntables, the input mesh taken from root/example/models."""
    return write_report(root / "output", root / "example/content", root / "example/style", turntable=None,
                        failures=failures, models_root=root / "example/models")


def test_glb_keeps_vertices_faces_and_colours(tmp_path):
    mesh = load_mesh(_write_sphere(tmp_path))
    save_glb(tmp_path / "mesh.glb", mesh)
    scene = trimesh.load(tmp_path / "mesh.glb", process=False)
    loaded = next(iter(scene.geometry.values()))
    assert np.allclose(loaded.vertices, mesh.verts.numpy(), atol=1e-6)
    assert (loaded.faces == mesh.faces.numpy()).all()
    colors = loaded.visual.vertex_attributes["color"][:, :3] / 255.0  # COLOR_0 (the material has no texture)
    assert np.abs(colors - mesh.colors.numpy()).max() <= 0.5 / 255 + 1e-6
    header = (tmp_path / "mesh.glb").read_bytes()
    length = int.from_bytes(header[12:16], "little")
    tree = json.loads(header[20:20 + length])  # the glTF JSON chunk
    assert all(material["doubleSided"] for material in tree["materials"]) and tree["materials"]


def _write_sphere(folder):
    sphere = ico_sphere(1)
    verts = sphere.verts_packed()
    path = folder / "sphere.obj"
    save_obj(path, Mesh(verts=verts, faces=sphere.faces_packed(), colors=(verts + 1) / 2))
    return path


def test_report_writes_glbs_beside_the_meshes_and_only_when_stale(fake_run):
    root, failures = fake_run
    _add_input_mesh(root)
    index = _report(root, failures)
    folder = root / "output/head/ink"
    for glb in [folder.parent / "input.glb", folder / "mesh.glb", folder / "mesh_smooth.glb"]:
        assert glb.is_file() and glb_script_path(glb).is_file(), glb
    assert (root / "output/report_files/model-viewer-umd.min.js").is_file()
    page = index.read_text()
    assert page.count('class="viewer3d"') == 3  # ink: three meshes; oil paint and wax: the input mesh only
    assert "head/ink/mesh_smooth.glb.js" in page
    assert_rewritten_only_when_stale(lambda: _report(root, failures), folder / "mesh.glb", folder / "mesh.obj")


def test_input_mesh_is_the_one_cameras_json_names(tmp_path):
    named = _write_sphere(tmp_path)
    content = ContentFolder(tmp_path / "content/head")
    content.path.mkdir(parents=True)
    assert content.mesh(tmp_path / "models") is None
    content.cameras.write_text(f'{{"mesh": "{named}"}}')
    assert content.mesh(tmp_path / "models") == named


def _differs_from_background(picture):
    """Share of pixels visibly different from the viewer's background."""
    return float((np.abs(picture - BACKGROUND).max(axis=-1) > 0.1).mean())


@needs_browser
def test_viewer_loads_lazily_shows_the_head_and_a_drag_turns_every_view(fake_run):
    root, failures = fake_run
    _add_input_mesh(root)
    index = _report(root, failures)
    with browser_page(height=500) as page:
        page.goto(index.as_uri())
        page.wait_for_timeout(500)
        below = page.evaluate("[...document.querySelectorAll('.viewer3d')].slice(1).map(c => c.dataset.state || '')")
        pair = page.locator('section[id="head--ink"] .viewer3d')
        pair.scroll_into_view_if_needed()
        page.wait_for_function("""() => {
            const views = document.querySelectorAll('section[id="head--ink"] model-viewer');
            return views.length === 3 && [...views].every(view => view.loaded && view.modelIsVisible);
        }""", timeout=60000)
        page.wait_for_timeout(500)  # the first frames
        views = pair.locator("model-viewer")
        before = [screenshot_array(views.nth(i)) for i in range(3)]
        box = views.nth(1).bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(x + 12 * step, y + 3 * step)
        page.mouse.up()
        page.wait_for_timeout(800)
        after = [screenshot_array(views.nth(i)) for i in range(3)]
        if os.environ.get("RRPS_KEEP_SCREENSHOTS"):
            pair.screenshot(path="/tmp/viewer_after_drag.png")
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<div style=\"height: 6000px\"></div>')")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # far past the pair: its views are freed ...
        page.wait_for_function("document.querySelectorAll('section[id=\"head--ink\"] model-viewer').length === 0",
                               timeout=10000)
        pair.scroll_into_view_if_needed()  # ... and come back when it is in view again
        page.wait_for_function("document.querySelectorAll('section[id=\"head--ink\"] model-viewer').length === 3",
                               timeout=30000)
    assert not page.errors, page.errors
    assert below == ["", ""]  # the pairs further down have loaded nothing
    for picture in before:
        assert _differs_from_background(picture) > 0.05  # the head is drawn, not a blank box
    changed = [float(np.abs(a - b).mean()) for a, b in zip(before, after)]
    assert all(change > 0.005 for change in changed), changed  # the dragged view and the linked ones turned
