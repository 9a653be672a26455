"""The report's 3D viewer: .glb files with their colours (unlit, linear COLOR_0), written when stale; in headless
Chromium (software WebGL, page opened from file://) a pair's views show the head, a drag turns both of them, and
the stylized view shows the colours of the project's unlit front render."""
import math
import os
import struct
import time

import numpy as np
import pytest
import torch
import trimesh
from pytorch3d.utils import ico_sphere
from scipy import ndimage
from skimage import color

from tests.browser import browser_page, needs_browser, screenshot_array
from tests.synthetic import assert_rewritten_only_when_stale
from utils.io.mesh import Mesh, load_mesh, save_obj, to_pytorch3d
from utils.rendering.content import RenderSettings, view_cameras
from utils.rendering.render import render_views
from utils.report.glb import UNLIT, glb_script_path, glb_tree, save_glb, srgb_to_linear, update_glbs
from utils.report.page import VIEWER_CAPTIONS, write_report
from utils.io.layout import ContentFolder

BACKGROUND = np.array([0xEE, 0xEE, 0xFF]) / 255.0  # the model-viewer boxes' background colour in page.py
VIEW_SIZE = 320  # the model-viewer boxes' size in page.py, CSS pixels
FRONT = RenderSettings(azimuths=[0.0], image_size=VIEW_SIZE, fov=30.0, background=tuple(BACKGROUND))
MAX_DELTA_E = 3.0  # mean CIE76 colour difference on the head, viewer against the rasterizer


def _add_input_mesh(root):
    """example/models/head.obj for the fake run: a coarse sphere coloured by position."""
    sphere = ico_sphere(2)
    verts = sphere.verts_packed()
    save_obj(root / "example/models/head.obj", Mesh(verts=verts, faces=sphere.faces_packed(), colors=(verts + 1) / 2))


def _report(root, failures):
    """The fake run's report without turntables, the input mesh taken from root/example/models."""
    return write_report(root / "output", root / "example/content", root / "example/style", turntable=None,
                        failures=failures, models_root=root / "example/models")


def test_glb_keeps_vertices_faces_and_linearized_colours_with_an_unlit_material(tmp_path):
    mesh = load_mesh(_write_sphere(tmp_path))
    save_glb(tmp_path / "mesh.glb", mesh)
    scene = trimesh.load(tmp_path / "mesh.glb", process=False)
    loaded = next(iter(scene.geometry.values()))
    assert np.allclose(loaded.vertices, mesh.verts.numpy(), atol=1e-6)
    assert (loaded.faces == mesh.faces.numpy()).all()
    tree = glb_tree(tmp_path / "mesh.glb")
    linear = _glb_colors(tmp_path / "mesh.glb", tree)
    assert np.abs(linear - srgb_to_linear(mesh.colors.numpy())).max() <= 0.5 / 65535 + 1e-7  # COLOR_0 is linear
    assert tree["extensionsUsed"] == [UNLIT]
    assert [UNLIT in material["extensions"] and material["doubleSided"] for material in tree["materials"]] == [True]


def _glb_colors(path, tree):
    """(V, 3) COLOR_0 of a .glb written by save_glb (normalized unsigned shorts), as floats."""
    accessor = tree["accessors"][tree["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"]]
    view = tree["bufferViews"][accessor["bufferView"]]
    data = path.read_bytes()
    data = data[20 + struct.unpack("<I", data[12:16])[0] + 8:]  # after the header, JSON chunk and binary chunk header
    values = np.frombuffer(data, dtype="<u2", count=accessor["count"] * 4, offset=view["byteOffset"])
    return values.reshape(-1, 4)[:, :3] / 65535.0


def test_srgb_to_linear_is_the_srgb_transfer_function():
    values = np.array([0.0, 0.04045, 0.5, 1.0])
    assert np.allclose(srgb_to_linear(values), [0.0, 0.04045 / 12.92, 0.214041, 1.0], atol=1e-6)


def test_a_glb_from_an_older_writer_is_rewritten(tmp_path):
    folder = tmp_path / "head/ink"
    folder.mkdir(parents=True)
    mesh = load_mesh(_write_sphere(folder))
    save_obj(folder / "mesh.obj", mesh)
    update_glbs(folder, None)
    shape = trimesh.Trimesh(vertices=mesh.verts.numpy(), faces=mesh.faces.numpy(), process=False)
    (folder / "mesh.glb").write_bytes(shape.export(file_type="glb"))  # lit, sRGB colours, newer than mesh.obj
    update_glbs(folder, None)
    assert glb_tree(folder / "mesh.glb")["extensionsUsed"] == [UNLIT]


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


def _painted_head():
    """A closed ellipsoid (2562 vertices, triangle edges about 10 pixels long in the front view) painted like a
    stylized portrait: saturated patches, mid and dark greys, and near-black outline strokes across it."""
    sphere = ico_sphere(4)
    verts = sphere.verts_packed() * torch.tensor([0.8, 1.0, 0.7])
    x, y, _ = verts.unbind(1)
    palette = torch.tensor([[0.85, 0.10, 0.10], [0.10, 0.70, 0.20], [0.15, 0.25, 0.90], [0.95, 0.85, 0.10],
                            [0.50, 0.50, 0.50], [0.30, 0.30, 0.30], [0.70, 0.70, 0.70], [0.90, 0.50, 0.70]])
    sector = ((torch.atan2(y, x) + math.pi) / (2 * math.pi) * len(palette)).long().clamp(max=len(palette) - 1)
    colors = palette[sector]
    colors[(y.abs() < 0.08) | (x.abs() < 0.06)] = torch.tensor([0.05, 0.04, 0.06])
    return Mesh(verts=verts, faces=sphere.faces_packed(), colors=colors)


def wait_until_shown(page, view, timeout=60.0):
    """Wait for a model-viewer element to load and show its model, scrolling it into view again every few seconds
    (without that, 1 run in 3 of this file never started loading the model: loaded stayed false, no page error);
    on a time-out, fail with what it had reached."""
    deadline = time.monotonic() + timeout
    while True:
        view.scroll_into_view_if_needed()
        try:
            page.wait_for_function("view => view.loaded && view.modelIsVisible", arg=view.element_handle(),
                                   timeout=5000)
            return
        except Exception as error:  # Playwright's TimeoutError
            if time.monotonic() > deadline:
                state = page.evaluate("view => ({loaded: view.loaded, visible: view.modelIsVisible})",
                                      view.element_handle())
                pytest.fail(f"model-viewer did not show its model within {timeout:.0f} s: {state}; "
                            f"page errors: {page.errors}; {type(error).__name__}")


@needs_browser
def test_viewer_shows_the_colours_of_the_unlit_front_render(fake_run):
    root, failures = fake_run
    path = root / "output/head/ink/mesh.obj"
    save_obj(path, _painted_head())
    index = _report(root, failures)
    mesh = load_mesh(path)
    cameras, at, distance = view_cameras(mesh, FRONT)
    render, zbuf = render_views(to_pytorch3d(mesh), cameras, FRONT.image_size, light=None,
                                background=FRONT.background)
    render, head = render[0].permute(1, 2, 0).numpy(), (zbuf[0] > 0).numpy()
    with browser_page() as page:
        page.goto(index.as_uri())
        page.locator('section[id="head--ink"] .viewer3d').scroll_into_view_if_needed()
        view = page.locator(f'section[id="head--ink"] model-viewer[alt="{VIEWER_CAPTIONS["stylized"]}"]')
        view.wait_for(timeout=60000)
        wait_until_shown(page, view)
        # the rasterizer's front camera: azimuth 0 looks along -z, as model-viewer's orbit theta 0, phi 90 deg
        orbit = page.evaluate("""([view, at, distance, fov]) => {
            // pinned to whole pixels without its border, so that the screenshot is the canvas, unresampled
            Object.assign(view.style, {position: "fixed", left: "0", top: "0", border: "0", zIndex: "10"});
            customElements.get("model-viewer").minimumRenderScale = 1;  // full resolution on a busy machine too
            view.minCameraOrbit = "auto auto 0m";  // the default limits keep the camera nearer than the rasterizer's
            view.maxCameraOrbit = "auto auto 1000m";
            view.cameraOrbit = `0deg 90deg ${distance}m`;
            view.cameraTarget = `${at[0]}m ${at[1]}m ${at[2]}m`;
            view.fieldOfView = `${fov}deg`;
            view.jumpCameraToGoal();
            return new Promise(resolve => setTimeout(() => {
                const orbit = view.getCameraOrbit();
                resolve([orbit.theta, orbit.phi, orbit.radius, view.getFieldOfView()]);
            }, 1000));
        }""", [view.element_handle(), at.tolist(), distance, FRONT.fov])
        shot = screenshot_array(view)
        if os.environ.get("RRPS_KEEP_SCREENSHOTS"):
            view.screenshot(path="/tmp/viewer_front.png")
    assert not page.errors, page.errors
    assert np.allclose(orbit, [0.0, math.pi / 2, distance, FRONT.fov], rtol=1e-3, atol=1e-4), orbit
    drawn = np.abs(shot - BACKGROUND).max(axis=-1) > 0.02
    overlap = (drawn & head).sum() / (drawn | head).sum()
    assert overlap > 0.95, overlap  # the same silhouette: the cameras agree
    inside = ndimage.binary_erosion(head, iterations=2)  # the head without its antialiased rim
    lab_render, lab_shot = color.rgb2lab(render), color.rgb2lab(shot)
    delta_e = float(color.deltaE_cie76(lab_render, lab_shot)[inside].mean())
    lightness = float((lab_shot - lab_render)[..., 0][inside].mean())
    assert delta_e <= MAX_DELTA_E, f"mean dE {delta_e:.2f}, lightness {lightness:+.1f}"
