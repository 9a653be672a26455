"""Small holes closed over their boundary vertices, large ones left open (utils/geometry/holes.py)."""
import torch
import trimesh

from utils.geometry.holes import close_small_holes


def boundary_edges(faces):
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(1).values
    unique, counts = torch.unique(edges, dim=0, return_counts=True)
    return unique[counts == 1]


def sphere_with_holes():
    """An icosphere (642 vertices) less the fan round one vertex (a hole of 5 or 6 edges) and less a cap of 20 or
    more faces round the opposite pole (a larger hole)."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    verts = torch.tensor(sphere.vertices, dtype=torch.float32)
    faces = torch.tensor(sphere.faces, dtype=torch.int64)
    top = int(verts[:, 2].argmax())
    cap = verts[faces].mean(1)[:, 2] < -0.85
    return verts, faces[~(faces == top).any(1) & ~cap]


def test_a_small_hole_is_closed_and_a_large_one_left_open():
    verts, faces = sphere_with_holes()
    before = boundary_edges(faces)
    closed = close_small_holes(verts, faces, 10)
    after = boundary_edges(closed)
    assert torch.equal(closed[:len(faces)], faces) and len(closed) > len(faces)  # faces added after the old ones
    assert 10 < len(after) < len(before) and bool((verts[after.flatten(), 2] < 0).all())  # the cap's edge stays
    new = closed[len(faces):]
    normals = torch.cross(verts[new[:, 1]] - verts[new[:, 0]], verts[new[:, 2]] - verts[new[:, 0]], dim=1)
    assert bool(((normals * verts[new].mean(1)).sum(1) > 0).all())  # wound outward, as the sphere's own faces are
    assert len(boundary_edges(close_small_holes(verts, faces, 1000))) == 0
    assert torch.equal(close_small_holes(verts, faces, 0), faces)
