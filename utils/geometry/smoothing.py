"""Taubin smoothing with MeshLab's rule ("Taubin Smooth", lambda 0.7, mu -0.53, 20 steps by default).

MeshLab (VCG's VertexCoordTaubin) averages each interior vertex over its
neighbours, counting each edge once per face it belongs to; a border vertex is
averaged over itself and its border neighbours only; unreferenced vertices stay.
So a mesh that is all border shrinks: a single triangle goes to its centroid
in MeshLab too (checked with pymeshlab); smooth.py says so when a mesh shrinks.
PyTorch3D's ``taubin_smoothing`` uses other weights (and gives NaN for
unreferenced vertices), so it does not reproduce MeshLab's result.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


@dataclass
class TaubinSettings:
    """MeshLab's "Taubin Smooth" filter and its defaults (smooth.py's flags come from here)."""

    lambd: float = 0.7  # shrinking step
    mu: float = -0.53  # inflating step
    steps: int = 20  # lambda/mu pairs, as MeshLab's step count


def border_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face's three edges and which of them lie on the mesh's border (belong to that face only).

    faces: (F, 3) int array. Returns (edges: (3F, 2) int, directed as in their face; on_border: (3F,) bool).
    """
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, edge_id, uses = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True, return_counts=True)
    return edges, uses[edge_id.ravel()] == 1


def umbrella_operator(faces: np.ndarray, num_verts: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Row-normalised averaging operator W (V, V) following MeshLab's border rule, and a mask of referenced vertices.

    faces: (F, 3) int array. Returns (W: scipy CSR, referenced: (V,) bool).
    """
    edges, on_border = border_edges(faces)

    def adjacency(directed):
        ones = np.ones(len(directed))
        half = sp.coo_matrix((ones, (directed[:, 0], directed[:, 1])), shape=(num_verts, num_verts))
        return (half + half.T).tocsr()

    border_vertex = np.zeros(num_verts, dtype=bool)
    border_vertex[edges[on_border].ravel()] = True
    interior_rows = sp.diags((~border_vertex).astype(float)) @ adjacency(edges[~on_border])
    border_rows = sp.diags(border_vertex.astype(float)) @ (adjacency(edges[on_border]) + sp.eye(num_verts))
    weights = (interior_rows + border_rows).tocsr()
    counts = np.asarray(weights.sum(axis=1)).ravel()
    referenced = counts > 0
    normalised = sp.diags(np.where(referenced, 1.0 / np.maximum(counts, 1), 0.0)) @ weights
    return normalised.tocsr(), referenced


def taubin_smooth(verts: torch.Tensor, faces: torch.Tensor, lambd: float = TaubinSettings.lambd,
                  mu: float = TaubinSettings.mu, steps: int = TaubinSettings.steps) -> torch.Tensor:
    """Taubin smoothing: ``steps`` pairs of a lambda step and a mu step, as MeshLab's filter.

    verts: (V, 3) tensor; faces: (F, 3) tensor. Returns the smoothed (V, 3) tensor (same dtype and device).
    """
    positions = verts.detach().cpu().double().numpy()
    operator, referenced = umbrella_operator(faces.detach().cpu().numpy(), len(positions))
    moving = referenced[:, None]
    for _ in range(steps):
        for factor in (lambd, mu):
            positions = np.where(moving, positions + factor * (operator @ positions - positions), positions)
    return torch.from_numpy(positions).to(dtype=verts.dtype, device=verts.device)
