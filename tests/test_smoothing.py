"""Taubin smoothing agrees with MeshLab's filter (pymeshlab), the tool the original used by hand."""
import numpy as np
import pymeshlab
import pytest
import torch

from utils.io.mesh import load_mesh
from utils.geometry.smoothing import taubin_smooth


def meshlab_taubin(verts, faces, lambd, mu, steps):
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(verts.double().numpy(), faces.numpy().astype(np.int32)))
    meshes.apply_coord_taubin_smoothing(lambda_=lambd, mu=mu, stepsmoothnum=steps)
    return torch.from_numpy(meshes.current_mesh().vertex_matrix())


@pytest.mark.slow
def test_matches_meshlab_on_a_real_portrait_mesh(rrps_data):
    mesh = load_mesh(rrps_data / "meshes" / "00319.obj")  # has borders, holes and unreferenced vertices
    ours = taubin_smooth(mesh.verts.double(), mesh.faces, 0.7, -0.53, 20)
    reference = meshlab_taubin(mesh.verts, mesh.faces, 0.7, -0.53, 20)
    error = (ours - reference).norm(dim=1).max() / mesh.bbox_diagonal()
    assert error < 1e-4
    assert (ours - mesh.verts.double()).norm(dim=1).max() / mesh.bbox_diagonal() > 1e-3  # it did smooth


def test_matches_meshlab_on_a_small_open_grid():
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    noise = torch.sin(xs * 3.1) * torch.cos(ys * 2.3) * 0.3
    verts = torch.stack([xs, ys, noise], -1).reshape(-1, 3)
    index = torch.arange(36).reshape(6, 6)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = torch.cat([torch.stack([a, b, d], -1).reshape(-1, 3), torch.stack([a, d, c], -1).reshape(-1, 3)])
    ours = taubin_smooth(verts.double(), faces, 0.5, -0.53, 7)
    assert torch.allclose(ours, meshlab_taubin(verts, faces, 0.5, -0.53, 7), atol=1e-9)
