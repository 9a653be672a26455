"""Splitting long edges (utils/geometry/subdivide.py): conforming, only where long, geometry unchanged."""
import torch
import trimesh

from utils.geometry.subdivide import split_long_edges


def edge_lengths(verts, faces):
    sides = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return (verts[sides[:, 0]] - verts[sides[:, 1]]).norm(dim=1)


def stretched_sphere():
    """An icosphere stretched 3x along x: long edges around its waist, short ones at its poles."""
    sphere = trimesh.creation.icosphere(subdivisions=2)
    verts = torch.tensor(sphere.vertices, dtype=torch.float32) * torch.tensor([3.0, 1.0, 1.0])
    return verts, torch.tensor(sphere.faces, dtype=torch.int64)


def test_long_edges_are_split_and_the_mesh_stays_closed_with_its_winding():
    verts, faces = stretched_sphere()
    before = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False)
    for limit in (0.5, 0.2):
        new_verts, new_faces, _ = split_long_edges(verts, faces, limit, rounds=6)
        after = trimesh.Trimesh(new_verts.numpy(), new_faces.numpy(), process=False)
        assert float(edge_lengths(new_verts, new_faces).max()) <= limit
        assert after.is_watertight and after.is_winding_consistent  # no T-junctions, no flipped children
        assert abs(after.area - before.area) < 1e-4 * before.area and abs(after.volume - before.volume) < 1e-4
        assert torch.equal(new_verts[:len(verts)], verts)  # the old vertices first, unmoved


def test_short_edges_are_left_alone_and_features_are_interpolated():
    verts, faces = stretched_sphere()
    lengths = edge_lengths(verts, faces)
    limit = float(lengths.median())
    new_verts, new_faces, features = split_long_edges(verts, faces, limit, features=verts * 2, rounds=1)
    assert torch.allclose(features, new_verts * 2)  # a linear feature stays linear at the midpoints
    assert len(new_verts) - len(verts) == int((lengths > limit).sum()) // 2  # one midpoint per long edge
    unchanged, _, _ = split_long_edges(verts, faces, float(lengths.max()) + 1)
    assert torch.equal(unchanged, verts)
