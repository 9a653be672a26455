"""Linear (DLT) triangulation of every vertex from its projections in K views, batched over vertices.

Each view k that sees vertex v gives two linear equations in the homogeneous
point X = [X, Y, Z, 1]:  x p3.X - p1.X = 0  and  y p3.X - p2.X = 0,  with p1, p2,
p3 the rows of P_k (pixel (x, y), ``utils.rendering.cameras.world_to_pixel``). The pixels
are first mapped to about [-1, 1] (Hartley normalisation) for conditioning, the
rows of a view are divided by that view's depth of the current estimate so that
the algebraic residual is the pixel residual (a few reweighting rounds), and the
point is the least-squares solution of the stacked rows with the homogeneous
coordinate fixed to 1 (3x3 normal equations per vertex, solved as one batch:
much faster on CPU than a batched SVD of small matrices).
"""
import torch

from utils.geometry.epipolar import camera_centre
from utils.rendering.cameras import project

REWEIGHT_ROUNDS = 3


def triangulate(points2d: torch.Tensor, P: torch.Tensor, mask: torch.Tensor,
                min_views: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangulate V points from their pixel positions in K views.

    points2d: (V, K, 2) pixel (x, y); P: (K, 3, 4) world-to-pixel; mask: (V, K) bool, the views to use.
    Returns (points (V, 3) in the dtype of points2d, solved (V,) bool). Points seen in fewer than
    ``min_views`` views, or whose system is singular or whose solution lies behind a camera, are not
    solved and get NaN coordinates.
    """
    dtype = points2d.dtype
    points2d, P = points2d.double(), P.double().to(points2d.device)
    normalise = _pixel_normalisation(points2d, mask)  # (3, 3)
    rows = _dlt_rows(points2d, normalise @ P, normalise)  # (V, K, 2, 4)
    weights = mask.to(rows.dtype)  # (V, K)
    points = regular = None
    for _ in range(REWEIGHT_ROUNDS):
        points, regular = _least_squares_point(rows * weights[..., None, None])
        depth = _depths(points, P)  # (V, K)
        weights = mask.to(rows.dtype) / depth.abs().clamp(min=1e-9)
        weights = weights / weights.amax(1, keepdim=True).clamp(min=1e-30)
    solved = (mask.sum(1) >= min_views) & regular & torch.isfinite(points).all(1)
    solved &= ((_depths(points, P) > 0) | ~mask).all(1)
    points = torch.where(solved[:, None], points, torch.full_like(points, float("nan")))
    return points.to(dtype), solved


def _pixel_normalisation(points2d, mask):
    """(3, 3) similarity taking the used pixels to zero mean and mean distance sqrt(2) (Hartley)."""
    used = points2d[mask] if bool(mask.any()) else points2d.reshape(-1, 2)
    centre = used.mean(0)
    scale = (2.0 ** 0.5) / (used - centre).norm(dim=1).mean().clamp(min=1e-12)
    transform = torch.eye(3, dtype=points2d.dtype, device=points2d.device)
    transform[:2, :2] *= scale
    transform[:2, 2] = -scale * centre
    return transform


def _dlt_rows(points2d, P, normalise):
    """(V, K, 2, 4) DLT rows  x' p3 - p1,  y' p3 - p2  for normalised pixels x' and normalised P."""
    xy = points2d @ normalise[:2, :2].T + normalise[:2, 2]  # (V, K, 2)
    third = P[None, :, 2:3, :]  # (1, K, 1, 4)
    return xy[..., None] * third - P[None, :, :2, :]


def _least_squares_point(rows):
    """Least-squares point of each vertex's stacked rows [A | b] (A X + b = 0), via the 3x3 normal equations.

    rows: (V, K, 2, 4). Returns (points (V, 3), regular (V,) bool: the normal matrix was invertible).
    """
    system = rows.reshape(rows.shape[0], -1, 4)  # (V, 2K, 4)
    matrix, offset = system[..., :3], system[..., 3:]
    normal = matrix.transpose(1, 2) @ matrix  # (V, 3, 3)
    points, info = torch.linalg.solve_ex(normal, -(matrix.transpose(1, 2) @ offset))
    return points[..., 0], info == 0


def _depths(points, P):
    """(V, K) third homogeneous coordinate of P [X, 1]: the view depth of each point."""
    homogeneous = torch.cat([points, torch.ones_like(points[:, :1])], dim=1)
    return torch.einsum("kj,vj->vk", P[:, 2, :], homogeneous)


def backproject(pixels: torch.Tensor, depth: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """World points at a given view depth along the rays through pixels: the inverse of ``project`` for one view.

    pixels: (N, 2) pixel (x, y); depth: (N,) view depth (third homogeneous coordinate); P: (N, 3, 4), each
    point's own view. Returns (N, 3) points X with P [X, 1] = depth [x, y, 1].
    """
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[:, :1])], dim=1) * depth[:, None]  # (N, 3)
    return torch.linalg.solve(P[:, :, :3], homogeneous - P[:, :, 3])


def _triangulated_rows(points2d: torch.Tensor, P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One point per row of points2d (K, L, 2) pixel (x, y), triangulated from all K views: (points (L, 3), solved
    (L,) bool)."""
    every = torch.ones(points2d.shape[1], points2d.shape[0], dtype=torch.bool, device=points2d.device)
    return triangulate(points2d.transpose(0, 1), P.to(points2d.device), every)


def _projected_rows(points: torch.Tensor, solved: torch.Tensor, points2d: torch.Tensor,
                    P: torch.Tensor) -> torch.Tensor:
    """points (L, 3) projected into the K views P (K, 3, 4): (K, L, 2), points2d's positions where not solved."""
    pixels = project(points.to(P.dtype), P.to(points2d.device))[0].to(points2d.dtype)  # (L, K, 2)
    return torch.where(solved[:, None, None], pixels, points2d.transpose(0, 1)).transpose(0, 1)


def consistent_projections(points2d: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """The projections of the triangulated points: the nearest positions (to first order) that one 3D point per
    row explains in every view. points2d: (K, L, 2) pixel (x, y) of L points in K views; P: (K, 3, 4).
    Returns (K, L, 2); a point that cannot be triangulated keeps its positions."""
    return _projected_rows(*_triangulated_rows(points2d, P), points2d, P)


def projections_at_depth(points2d: torch.Tensor, reference2d: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """The projections of the points triangulated from points2d, each first moved along the cameras' mean viewing
    direction to the depth of the point triangulated from reference2d: one 3D point per row, with the first's shape
    across the views and the second's relief. points2d, reference2d: (K, L, 2) pixel (x, y); P: (K, 3, 4).
    Returns (K, L, 2); a point that either cannot triangulate keeps its positions."""
    shape, solved = _triangulated_rows(points2d, P)  # (L, 3)
    relief, found = _triangulated_rows(reference2d, P)
    solved &= found
    if not bool(solved.any()):
        return points2d
    centres = torch.stack([camera_centre(view)[:3] for view in P.double()]).to(shape)  # (K, 3)
    direction = torch.nn.functional.normalize(relief[solved].mean(0) - centres.mean(0), dim=0)
    moved = shape + ((relief - shape) @ direction)[:, None] * direction
    return _projected_rows(moved, solved, points2d, P)
