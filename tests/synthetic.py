"""The tests' shared inputs and helpers (their fixtures are in conftest.py, which builds them from these).

- Known-answer inputs for the reconstruction (used by bench/bench_reconstruct.py too): a smoothly deformed,
  recoloured mesh and what the views see of it; the "stylized" views are unlit renders of the deformed mesh and
  the "warped" projections its exact vertex projections, so the reconstruction should recover the deformed mesh.
- ``tiny_network``: a feature network small enough for the style transfer's tests.
- ``face_points``: 68 landmarks of a plausible upright face, so the landmark loader reads them without doubt.
- The tiny project of the pipeline tests (``make_project``, ``run_main``; bench/bench_run_memory.py too), the
  style transfer's tiny inputs (``write_style_example``), small meshes and pictures.
"""
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from pytorch3d.utils import ico_sphere
from torch import nn

import correspondences
import rendering
import run
from models.features import FeatureNetwork
from utils.io.images import save_image
from utils.io.landmarks import load_landmarks
from utils.io.mesh import Mesh, save_obj
from utils.rendering.content import RenderSettings, observe_mesh
from utils.style.io import load_content_views, load_style, prepare_inputs
from utils.style.stylize import StylizeSettings

ROOT = Path(__file__).resolve().parents[1]


def deform_and_recolor(mesh, amplitude=0.02, waves=1.0):
    """The mesh moved by a smooth displacement field and painted with a smooth colour field.

    amplitude: largest displacement per axis, relative to the bounding-box diagonal; waves: periods of the
    fields across the mesh. Returns a ``Mesh`` with the same faces.
    """
    diagonal = mesh.bbox_diagonal()
    centre = (mesh.verts.amax(0) + mesh.verts.amin(0)) / 2
    u = (mesh.verts - centre) / diagonal * (2 * math.pi * waves)  # (V, 3), about one period per diagonal
    x, y, z = u.unbind(1)
    displacement = torch.stack([torch.sin(y + 0.5), torch.cos(x - 0.3), torch.sin(x + y + z)], 1)
    colors = torch.stack([0.5 + 0.3 * torch.sin(1.5 * x + 0.2), 0.5 + 0.25 * torch.cos(1.3 * y),
                          0.45 + 0.2 * torch.sin(x - y + 0.4)], 1)
    return Mesh(verts=mesh.verts + amplitude * diagonal * displacement, faces=mesh.faces, colors=colors)


def observe(mesh, cameras, image_size, backend="auto"):
    """What K views see of ``mesh``, unlit as rendering.py renders it (``observe_mesh``).

    Returns (images (K, 3, S, S) in [0, 1], pixels (V, K, 2) pixel (x, y), visible (V, K) bool).
    """
    return observe_mesh(mesh, cameras, RenderSettings(image_size=image_size), backend)


def tiny_network():
    """Two random conv stages: the loss's arithmetic at a fraction of the cost."""
    torch.manual_seed(0)
    stages = [nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
              nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())]
    return FeatureNetwork(stages, "tiny", "tests")


def tiny_network_loader(*args, **kwargs):
    """``run.load_feature_network``'s stand-in: the tiny network whatever is asked for."""
    return tiny_network()


# ---- landmarks and pictures ---------------------------------------------------------------------------------

def _ellipse(centre, radii, start, stop, count):
    """``count`` points (count, 2) on an ellipse from angle ``start`` to ``stop`` (radians, y down)."""
    angles = np.linspace(start, stop, count)
    return np.asarray(centre) + np.stack([radii[0] * np.cos(angles), radii[1] * np.sin(angles)], 1)


def _unit_face():
    """iBUG's 68 points of an upright face, centred on 0 and about 0.6 wide: (68, 2) (x, y), y down."""
    jaw = _ellipse((0.0, -0.05), (0.3, 0.3), np.pi, 0.0, 17)  # 0 by the left ear, round the chin (8) to 16
    brows = [_ellipse((side * 0.14, -0.15), (0.09, 0.04), np.pi, 2 * np.pi, 5) for side in (-1, 1)]
    bridge = np.stack([np.zeros(4), np.linspace(-0.12, 0.0, 4)], 1)
    nostrils = np.stack([np.linspace(-0.06, 0.06, 5), np.full(5, 0.05)], 1)
    # each eye from its left corner over the upper lid: 36 outer and 39 inner (left eye), 42 inner and 45 outer
    eyes = [_ellipse((side * 0.105, -0.08), (0.045, 0.02), np.pi, 3 * np.pi, 7)[:6] for side in (-1, 1)]
    mouth = _ellipse((0.0, 0.15), (0.1, 0.045), np.pi, 3 * np.pi, 13)[:12]
    lips = _ellipse((0.0, 0.15), (0.06, 0.015), np.pi, 3 * np.pi, 9)[:8]
    return np.concatenate([jaw, *brows, bridge, nostrils, *eyes, mouth, lips])


def face_points(size=200, squash=1.0, shift=(0.0, 0.0)):
    """A plausible upright face's 68 landmarks in a ``size`` x ``size`` image: (68, 2) pixel (x, y), 3 decimals.

    The jaw's ends (points 0 and 16) are level, so the landmark loader reads the points in either file form
    without a doubt; the outer eye corners (36, 45) are 0.3 ``size`` apart. ``squash`` widens (> 1) or
    narrows the face, ``shift`` (x, y) moves it from the image's centre.
    """
    points = _unit_face() * [squash, 1.0 / squash] * size + [size / 2 + shift[0], size / 2 + shift[1]]
    return np.round(points, 3)


def picture(seed, size=48):
    """A small (size, size, 3) image in [0, 1]: a gradient from a colour of its own to white."""
    colour = np.random.default_rng(seed).random(3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    return (colour * (1 - ramp) + ramp).repeat(size, axis=1).astype(np.float32)


def smooth_image(size, seed):
    """A smooth random colour image (H, W, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 6, 6))).float()
    image = nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return image[0].clamp(0, 1).permute(1, 2, 0).numpy()


def assert_rewritten_only_when_stale(report, made, source):
    """``report()`` leaves ``made`` alone while it is newer than ``source``, and writes it again once it is not."""
    before = made.stat().st_mtime_ns
    report()
    assert made.stat().st_mtime_ns == before
    later = made.stat().st_mtime + 10
    os.utime(source, (later, later))
    report()
    assert made.stat().st_mtime_ns != before


# ---- meshes --------------------------------------------------------------------------------------------------

def sphere_mesh(level=2):
    """An icosphere of radius 1 coloured by position: (verts + 1) / 2."""
    sphere = ico_sphere(level)
    verts = sphere.verts_packed()
    return Mesh(verts=verts, faces=sphere.faces_packed(), colors=(verts + 1) / 2)


def face_relief(grid=25):
    """A grid x grid relief facing +z with smooth colours, and 68 landmark vertex indices (jaw left to right)."""
    ys, xs = torch.meshgrid(torch.linspace(1, -1, grid), torch.linspace(-1, 1, grid), indexing="ij")
    depth = 0.6 * torch.exp(-(xs.square() + ys.square()))
    verts = torch.stack([xs, ys, depth], -1).reshape(-1, 3)
    index = torch.arange(grid * grid).reshape(grid, grid)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = torch.cat([torch.stack([a, c, b], -1).reshape(-1, 3), torch.stack([b, c, d], -1).reshape(-1, 3)])
    colors = torch.stack([(xs + 1) / 2, (ys + 1) / 2, 0.5 + 0.4 * torch.sin(3 * xs * ys)], -1).reshape(-1, 3)
    t = torch.linspace(-0.8, 0.8, 17)
    jaw = torch.stack([t, -0.2 - 0.6 * (1 - t.square())], 1)
    inner = torch.stack(torch.meshgrid(torch.linspace(0.5, -0.1, 3), torch.linspace(-0.6, 0.6, 17),
                                       indexing="ij"), -1).reshape(-1, 2).flip(1)
    points = torch.cat([jaw, inner])  # (68, 2) x, y
    landmark_vertices = torch.cdist(points, verts[:, :2]).argmin(1)
    return Mesh(verts=verts, faces=faces, colors=colors.clamp(0, 1)), landmark_vertices


# ---- the pipeline's tiny project -----------------------------------------------------------------------------

RUN_FLAGS = ["--device", "cpu", "--image-size", "32", "--scales", "2", "--iterations", "3", "--result-samples",
             "64", "--style-samples", "64", "--checkpoint-every", "0", "--refine-iterations", "3",
             "--all-round-image-size", "32", "--all-round-iterations", "2", "--all-round-result-samples", "64",
             "--all-round-style-samples", "64"]
COMPARED = ["stylized_0.png", "stylized_1.png", "unwarped_0.png", "unwarped_1.png", "verts2d_warped.npy", "mesh.obj"]


def make_project(root, monkeypatch, grid=25):
    """A tiny project folder after rendering and correspondences: models/, content/, style/ (one good style);
    run.py's feature network is the tiny one. Returns ``root``."""
    mesh, landmark_vertices = face_relief(grid)
    save_obj(root / "models" / "face.obj", mesh)
    np.savetxt(root / "models" / "face.landmarks.txt", landmark_vertices.numpy(), fmt="%d")
    monkeypatch.setattr(sys, "argv", ["rendering.py", str(root / "models" / "face.obj"), "--out",
                                      str(root / "content"), "--size", "64"])
    rendering.main()
    style = root / "style"
    generator = np.random.default_rng(0)
    save_image(style / "toon.png", np.kron(generator.random((8, 8, 3)), np.ones((10, 10, 1))))
    monkeypatch.setattr(sys, "argv", ["correspondences.py", "--content", str(root / "content"), "--style",
                                      str(style), "--models", str(root / "models"), "--only", "face"])
    correspondences.main()
    content_landmarks = load_landmarks(root / "content" / "face" / "landmarks_0.txt")
    centre = content_landmarks.mean(0)
    np.savetxt(style / "toon.txt", (content_landmarks - centre) * [0.85, 1.15] + [40, 40], fmt="%.3f")
    monkeypatch.setattr(run, "load_feature_network", tiny_network_loader)
    return root


def run_main(project, output, *extra):
    """run.main on the tiny project; returns the exit code (0 when it returned normally)."""
    try:
        run.main(["--content-dir", str(project / "content"), "--style-dir", str(project / "style"),
                  "--output", str(output), *RUN_FLAGS, *extra])
    except SystemExit as stop:
        return stop.code
    return 0


# ---- the style transfer's tiny inputs ------------------------------------------------------------------------

STYLE_SIZE = 64  # the content views' side


def write_style_example(root):
    """root/content/face (2 views, 64 px, a vertex grid) and root/style/toon (with landmarks). Returns ``root``."""
    content = root / "content" / "face"
    views = []
    for k in range(2):
        save_image(content / f"view_{k}.png", smooth_image(STYLE_SIZE, k))
        np.savetxt(content / f"landmarks_{k}.txt", face_points(STYLE_SIZE, shift=(2 * k - 1, 0)), fmt="%.3f")
        views.append({"azimuth": 10.0 * (2 * k - 1), "elevation": 0.0, "fov": 15.0})
    (content / "cameras.json").write_text(json.dumps({"image_size": STYLE_SIZE, "views": views}))
    grid = np.stack(np.meshgrid(np.linspace(12, 52, 9), np.linspace(12, 52, 9)), -1).reshape(-1, 2)
    np.save(content / "verts2d.npy", np.stack([grid - 1, grid + 1], 1).astype(np.float32))
    visible = np.ones((len(grid), 2), bool)
    visible[:5, 1] = False
    np.save(content / "visible.npy", visible)
    style = root / "style"
    save_image(style / "toon.png", smooth_image(STYLE_SIZE + 16, 7))
    np.savetxt(style / "toon.txt", face_points(STYLE_SIZE + 16, squash=1.25), fmt="%.3f")
    return root


def quick_settings(**changes):
    """StylizeSettings for the tiny inputs: 64 px, 2 scales, 8 iterations, 256 samples; ``changes`` on top."""
    base = dict(image_size=STYLE_SIZE, scales=2, iterations=8, pyramid_levels=3, optimizer="adam", learning_rate=0.02,
                warp_lr_factor=50.0, result_samples=256, style_samples=256, field_size=32, checkpoint_every=0)
    return StylizeSettings(**{**base, **changes})


def load_inputs(example):
    """The tiny inputs (``write_style_example``'s folder) prepared for ``stylize_views``."""
    content = load_content_views(example / "content" / "face")
    return prepare_inputs(content, load_style(example / "style" / "toon.png"))


def add_style(style_dir, name, seed, like="toon"):
    """Another style exemplar, ``<style_dir>/<name>.png`` (8 x 8 random tiles of 10 px, seeded), with the landmarks
    of ``<like>.txt``."""
    save_image(style_dir / f"{name}.png", np.kron(np.random.default_rng(seed).random((8, 8, 3)), np.ones((10, 10, 1))))
    (style_dir / f"{name}.txt").write_text((style_dir / f"{like}.txt").read_text())
