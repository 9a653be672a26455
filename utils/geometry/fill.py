"""Smooth (harmonic) interpolation of per-vertex values over a mesh from the vertices where they are known.

The unknown values x_u solve the mesh Laplacian with the known ones as Dirichlet
constraints:  L_uu x_u = -L_uk x_k  (scipy.sparse). A constant field is
reproduced exactly (every row of L sums to zero); connected components with no
known vertex get the ``default`` value.
"""
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
import torch

COTANGENT_FLOOR = 1e-3


def harmonic_fill(values: torch.Tensor, known: torch.Tensor, weight_matrix: scipy.sparse.spmatrix,
                  default: float = 0.0) -> torch.Tensor:
    """Fill the unknown rows of a per-vertex field by harmonic interpolation over the mesh.

    values: (V, C) tensor, rows where ``known`` is False are ignored (may be NaN); known: (V,) bool;
    weight_matrix: (V, V) edge weights from ``edge_weights`` (compute it once per mesh and reuse it).
    Returns a (V, C) tensor like ``values``: known rows unchanged, unknown rows harmonic, ``default`` in
    connected components without a known vertex.
    """
    known_np = known.detach().cpu().numpy().astype(bool)
    if known_np.all():
        return values.clone()
    reachable = _components_with_known(weight_matrix, known_np)
    unknown = ~known_np & reachable
    values_np = values.detach().cpu().double().numpy()
    filled = np.where(known_np[:, None], values_np, default)
    if unknown.any():
        laplacian = (scipy.sparse.diags(np.asarray(weight_matrix.sum(1)).ravel()) - weight_matrix).tocsr()
        system = laplacian[unknown][:, unknown].tocsc()
        rhs = -(laplacian[unknown][:, known_np] @ values_np[known_np])
        filled[unknown] = scipy.sparse.linalg.splu(system).solve(np.asarray(rhs))
    return torch.from_numpy(filled).to(dtype=values.dtype, device=values.device)


def edge_weights(faces: torch.Tensor, verts: torch.Tensor | None = None,
                 weights: str = "uniform") -> scipy.sparse.csr_matrix:
    """(V, V) scipy sparse symmetric matrix of positive edge weights.

    faces: (F, 3) int64; verts: (V, 3), needed for ``weights="cotangent"``; weights: "uniform" (1 per edge,
    the graph Laplacian) or "cotangent" (half the sum of the opposite angles' cotangents, clamped to a small
    positive floor so the fill keeps a maximum principle and every edge keeps the mesh connected).
    """
    faces_np = faces.detach().cpu().numpy()
    num_verts = int(faces_np.max()) + 1 if verts is None else len(verts)
    verts_np = None if verts is None else verts.detach().cpu().double().numpy()
    corners = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]  # edge (i, j) opposite corner o
    rows, cols, data = [], [], []
    for i, j, o in corners:
        rows.append(faces_np[:, i])
        cols.append(faces_np[:, j])
        if weights == "uniform":
            data.append(np.ones(len(faces_np)))
        elif weights == "cotangent":
            data.append(np.clip(_cotangent_at(verts_np, faces_np, o, i, j), COTANGENT_FLOOR, None) / 2)
        else:
            raise ValueError(f"unknown Laplacian weights '{weights}' (use 'uniform' or 'cotangent')")
    rows, cols, data = np.concatenate(rows), np.concatenate(cols), np.concatenate(data)
    matrix = scipy.sparse.coo_matrix((data, (rows, cols)), shape=(num_verts, num_verts)).tocsr()
    matrix = matrix + matrix.T
    if weights == "uniform":
        matrix.data[:] = 1.0  # an edge shared by two faces counts once
    return matrix


def _cotangent_at(verts_np, faces_np, corner, i, j):
    """(F,) cotangent of the angle at ``corner`` of each face, opposite the edge (i, j)."""
    a = verts_np[faces_np[:, i]] - verts_np[faces_np[:, corner]]
    b = verts_np[faces_np[:, j]] - verts_np[faces_np[:, corner]]
    cross = np.linalg.norm(np.cross(a, b), axis=1)
    return (a * b).sum(1) / np.maximum(cross, 1e-12)


def _components_with_known(weight_matrix, known_np):
    """(V,) bool: the vertex lies in a connected component that has at least one known vertex."""
    _, labels = scipy.sparse.csgraph.connected_components(weight_matrix, directed=False)
    return np.isin(labels, np.unique(labels[known_np]))
