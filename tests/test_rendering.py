"""Cameras, world-to-pixel matrices, visibility and rendering.py on small meshes."""
import json
import sys

import numpy as np
import pytest
import torch

from tests.synthetic import sphere_mesh
from utils.rendering.cameras import frame_mesh, load_cameras, make_cameras, project, save_cameras, world_to_pixel
from utils.io.images import load_image
from utils.io.mesh import Mesh, save_obj, to_pytorch3d
from utils.rendering.render import rasterize_views, render_views, vertex_visibility

import rendering


def test_world_to_pixel_agrees_with_pytorch3d_projection():
    mesh = sphere_mesh()
    at, distance = frame_mesh(mesh.verts, 20.0)
    cameras = make_cameras([-10.0, 25.0], [0.0, 15.0], distance, 20.0, at)
    pixels, depth = project(mesh.verts, world_to_pixel(cameras, 96))
    screen = cameras.transform_points_screen(mesh.verts.expand(2, -1, -1), image_size=(96, 96))  # corner origin
    assert torch.allclose(pixels, screen[..., :2].permute(1, 0, 2) - 0.5, atol=1e-3)
    view_depth = cameras.get_world_to_view_transform().transform_points(mesh.verts.expand(2, -1, -1))[..., 2]
    assert torch.allclose(depth, view_depth.T, atol=1e-4)


def test_projected_vertex_lands_on_its_face_in_the_rasterized_image():
    mesh = sphere_mesh(3)
    cameras = make_cameras([0.0, 30.0], [0.0, 0.0], 3.0, 40.0, [0.0, 0.0, 0.0])
    fragments = rasterize_views(to_pytorch3d(mesh), cameras, 64)
    centres = mesh.verts[mesh.faces].mean(1)  # (F, 3) face centroids
    pixels, _ = project(centres, world_to_pixel(cameras, 64))
    hits = 0
    for k in range(2):
        faces_seen = fragments.pix_to_face[k, ..., 0] - k * len(mesh.faces)
        covered = faces_seen.unique()
        covered = covered[covered >= 0]
        column, row = pixels[covered, k].round().long().unbind(-1)
        hits += (faces_seen[row, column] == covered).float().mean()
    assert hits / 2 > 0.9  # the face seen at its centroid's pixel is that face


def test_cameras_json_round_trip(tmp_path):
    cameras = make_cameras([-10.0, 10.0], [0.0, 5.0], 4.0, 15.0, [0.1, 0.2, 0.3])
    save_cameras(tmp_path / "cameras.json", cameras, 128, [-10.0, 10.0], [0.0, 5.0], 4.0, 15.0, [0.1, 0.2, 0.3])
    loaded, P, size, views = load_cameras(tmp_path / "cameras.json")
    assert size == 128 and views[1]["elevation"] == 5.0
    assert torch.allclose(P, world_to_pixel(cameras, 128), atol=1e-4)
    assert torch.allclose(torch.tensor(views[0]["P"]), P[0])


def occluded_scene():
    """A back square (z=0) of 11x11 vertices and a small front square (z=1) over its centre."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 11), torch.linspace(-1, 1, 11), indexing="ij")
    back = torch.stack([xs, ys, torch.zeros_like(xs)], -1).reshape(-1, 3)
    index = torch.arange(121).reshape(11, 11)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    back_faces = torch.cat([torch.stack([a, d, b], -1).reshape(-1, 3), torch.stack([a, c, d], -1).reshape(-1, 3)])
    front = torch.tensor([[-0.45, -0.45, 1.0], [0.45, -0.45, 1.0], [0.45, 0.45, 1.0], [-0.45, 0.45, 1.0]])
    front_faces = torch.tensor([[0, 2, 1], [0, 3, 2]]) + 121
    verts = torch.cat([back, front])
    return Mesh(verts=verts, faces=torch.cat([back_faces, front_faces]), colors=torch.full_like(verts, 0.5))


def test_visibility_with_a_known_occluder():
    mesh = occluded_scene()
    cameras = make_cameras([0.0], [0.0], 6.0, 30.0, [0.0, 0.0, 0.0])
    _, zbuf = render_views(to_pytorch3d(mesh), cameras, 128)
    pixels, depth = project(mesh.verts, world_to_pixel(cameras, 128))
    visible = vertex_visibility(pixels, depth, zbuf, tolerance=0.02)[:, 0]
    back = mesh.verts[:121]
    hidden = (back[:, 0].abs() < 0.35) & (back[:, 1].abs() < 0.35)  # well inside the front square's shadow
    assert not visible[:121][hidden].any()
    outside = (back[:, 0].abs() > 0.55) | (back[:, 1].abs() > 0.55)
    assert visible[:121][outside].all() and visible[121:].all()


def test_unlit_render_shows_the_vertex_colours():
    mesh = sphere_mesh(3)
    mesh.colors = torch.tensor([0.2, 0.6, 0.9]).expand_as(mesh.verts).clone()
    cameras = make_cameras([0.0], [0.0], 3.0, 40.0, [0.0, 0.0, 0.0])
    images, zbuf = render_views(to_pytorch3d(mesh), cameras, 64, background=(1.0, 0.0, 0.0))
    inside = zbuf[0] > 0
    assert torch.allclose(images[0][:, inside].mean(1), torch.tensor([0.2, 0.6, 0.9]), atol=1e-4)
    assert torch.allclose(images[0][:, ~inside].mean(1), torch.tensor([1.0, 0.0, 0.0]))


def test_rendering_script_writes_the_contract_and_skips_up_to_date(tmp_path, monkeypatch, capsys):
    mesh_path = tmp_path / "ball.obj"
    save_obj(mesh_path, sphere_mesh(2))
    out = tmp_path / "content"
    argv = ["rendering.py", str(mesh_path), "--out", str(out), "--size", "64"]
    monkeypatch.setattr(sys, "argv", argv)
    rendering.main()
    folder = out / "ball"
    verts2d, visible = np.load(folder / "verts2d.npy"), np.load(folder / "visible.npy")
    assert verts2d.shape == (162, 2, 2) and visible.shape == (162, 2) and visible.dtype == bool
    assert 0.3 < visible.mean() < 0.7  # about half a sphere is seen
    assert load_image(folder / "view_1.png").shape == (3, 64, 64)
    cameras = json.loads((folder / "cameras.json").read_text())
    assert [v["azimuth"] for v in cameras["views"]] == [-10.0, 10.0] and len(cameras["views"][0]["P"]) == 3
    rendering.main()
    assert "up to date" in capsys.readouterr().out
    (folder / "cameras.json").write_text("[1, 2]")  # damaged: rendered again, not a crash
    rendering.main()
    assert "up to date" not in capsys.readouterr().out and "render_settings" in (folder / "cameras.json").read_text()
    (folder / "landmarks_0.txt").write_text("landmarks of the old view 0\n")
    monkeypatch.setattr(sys, "argv", argv + ["--azimuths", "0"])  # one view now: elevation 0, stale files removed
    rendering.main()
    assert np.load(folder / "verts2d.npy").shape == (162, 1, 2) and not (folder / "view_1.png").exists()
    assert not (folder / "landmarks_0.txt").exists()
    monkeypatch.setattr(sys, "argv", argv + ["--azimuths", "0", "10", "--elevations", "5"])
    with pytest.raises(SystemExit):
        rendering.main()


def test_rendering_script_reports_a_bad_mesh_in_one_line(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\n")
    monkeypatch.setattr(sys, "argv", ["rendering.py", str(bad), "--out", str(tmp_path / "content")])
    with pytest.raises(SystemExit) as stop:
        rendering.main()
    assert stop.value.code == 2
    stderr = capsys.readouterr().err
    error = stderr.strip().splitlines()[-1]  # after the progress bar
    assert error.startswith("error:") and "bad.obj" in error and "Traceback" not in stderr
    assert not (tmp_path / "content" / "bad").exists()
