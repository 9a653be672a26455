"""Known-answer inputs for the reconstruction: a smoothly deformed, recoloured mesh and what the views see of it.

Used by the tests and the benchmark: the "stylized" views are unlit renders of
the deformed mesh and the "warped" projections are its exact vertex projections,
so the reconstruction should recover the deformed mesh.
"""
import math

import torch

from utils.rendering.cameras import project, world_to_pixel
from utils.io.mesh import Mesh, to_pytorch3d
from utils.rendering.render import render_views, vertex_visibility

VISIBILITY_TOLERANCE = 0.01  # depth slack, relative to the bounding-box diagonal (as rendering.py)


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
    """What K views see of ``mesh``: unlit renders, vertex projections and visibility.

    Returns (images (K, 3, S, S) in [0, 1], pixels (V, K, 2) pixel (x, y), visible (V, K) bool).
    """
    device = cameras.device
    P = world_to_pixel(cameras, image_size)
    with torch.no_grad():
        images, zbuf = render_views(to_pytorch3d(mesh, device), cameras, image_size, backend)
        pixels, depth = project(mesh.verts.to(device), P)
        visible = vertex_visibility(pixels, depth, zbuf, VISIBILITY_TOLERANCE * mesh.bbox_diagonal())
    return images, pixels, visible
