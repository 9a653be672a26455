"""Small holes in a mesh closed with new faces over their boundary vertices (no new vertices)."""
from __future__ import annotations

import torch


def close_small_holes(verts: torch.Tensor, faces: torch.Tensor, max_edges: int) -> torch.Tensor:
    """faces (F, 3) of the mesh ``verts`` (V, 3) with every hole whose boundary has at most ``max_edges`` edges
    closed (MeshLab's close holes, through pymeshlab, wound as its neighbours): (F', 3), the first F as they were.
    A mesh pymeshlab cannot close (not manifold at a hole) is returned as it is."""
    import pymeshlab

    if max_edges <= 0 or not len(faces):
        return faces
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(verts.detach().double().cpu().numpy(), faces.cpu().int().numpy()))
    try:
        meshes.meshing_close_holes(maxholesize=max_edges, selfintersection=False, refinehole=False)
    except pymeshlab.PyMeshLabException:
        return faces
    closed = torch.from_numpy(meshes.current_mesh().face_matrix()).long().to(faces.device)
    if len(closed) < len(faces) or not torch.equal(closed[:len(faces)], faces.long()):
        return faces  # MeshLab removed or reordered faces: keep the mesh as it was
    return closed
