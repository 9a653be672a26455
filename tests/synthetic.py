"""Known-answer inputs for the reconstruction: a smoothly deformed, recoloured mesh and what the views see of it.

Used by the tests and the benchmark: the "stylized" views are unlit renders of
the deformed mesh and the "warped" projections are its exact vertex projections,
so the reconstruction should recover the deformed mesh. Also ``tiny_network``, a feature network small enough
for the style transfer's tests.
"""
import math

import numpy as np
import torch
from torch import nn

from models.features import FeatureNetwork
from utils.io.images import save_image
from utils.io.mesh import Mesh
from utils.rendering.content import RenderSettings, observe_mesh


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


def add_style(style_dir, name, seed, like="toon"):
    """Another style exemplar, ``<style_dir>/<name>.png`` (8 x 8 random tiles of 10 px, seeded), with the landmarks
    of ``<like>.txt``."""
    save_image(style_dir / f"{name}.png", np.kron(np.random.default_rng(seed).random((8, 8, 3)), np.ones((10, 10, 1))))
    (style_dir / f"{name}.txt").write_text((style_dir / f"{like}.txt").read_text())
