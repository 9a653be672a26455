"""Thin-plate-spline warps of K views driven by landmark displacements, the image border held fixed.

The warp is defined forward: a point p of the content image moves to p + u(p), where u is the thin-plate
spline that interpolates the landmark displacements d (u(landmark_i) = d_i) and is zero at fixed points
along the border. Its control points never move, so the linear map from displacements to u at any fixed
set of points (a field grid, the mesh's vertex projections) is solved once and reused every iteration.

Images are warped backward (each output pixel q samples the input at q + b(q), with b the inverse
displacement, b(q) = -u(q + b(q)), found by fixed-point iterations on a field grid), so a landmark drawn
in the content image lands at landmark + d in the warped image, the same place the vertices move to.
All coordinates are full-resolution pixels (x, y); images of any scale covering the same extent are
warped with the same field.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from utils.io.images import pixel_to_grid


def border_points(image_size: int, per_side: int) -> Tensor:
    """Points along the image border, corners included: (4 * per_side, 2) pixel (x, y)."""
    last = image_size - 1.0
    t = torch.linspace(0.0, last, per_side + 1, dtype=torch.float64)[:-1]
    edges = [torch.stack([t, torch.zeros_like(t)], 1), torch.stack([torch.full_like(t, last), t], 1),
             torch.stack([last - t, torch.full_like(t, last)], 1), torch.stack([torch.zeros_like(t), last - t], 1)]
    return torch.cat(edges)


def tps_radial(squared_distance: Tensor) -> Tensor:
    """The thin-plate kernel r^2 log r written on r^2 (0 at r = 0)."""
    return 0.5 * squared_distance * torch.log(squared_distance.clamp(min=1e-30))


def _affine_basis(points):
    """(K, Q, 2) -> (K, Q, 3): [1, x, y]."""
    return torch.cat([torch.ones_like(points[..., :1]), points], dim=-1)


def tps_interpolation_matrix(controls: Tensor, queries: Tensor, active: Optional[Tensor] = None) -> Tensor:
    """Linear map from values at the control points to the thin-plate spline's values at the queries.

    controls: (K, N, 2); queries: (K, Q, 2), any units; active: optional (K, M) bool over the first M controls,
    False for controls left out of the spline (duplicates), whose columns are zero.
    Returns (K, Q, N) float64 E with f(queries) = E @ values.
    """
    controls, queries = controls.double(), queries.double()
    scale = (controls.max() - controls.min()).clamp(min=1.0)  # conditioning only: TPS is scale invariant
    controls, queries = controls / scale, queries / scale
    views, count = controls.shape[:2]
    keep = torch.ones(views, count, dtype=torch.bool, device=controls.device)
    if active is not None:
        keep[:, :active.shape[1]] = active
    kernel = tps_radial(torch.cdist(controls, controls).square())
    pair = keep.unsqueeze(2) & keep.unsqueeze(1)
    kernel = torch.where(pair, kernel, torch.diag_embed((~keep).double()))  # left-out controls: identity rows
    affine = _affine_basis(controls) * keep.unsqueeze(-1)
    top = torch.cat([kernel, affine], dim=2)
    bottom = torch.cat([affine.transpose(1, 2), kernel.new_zeros(views, 3, 3)], dim=2)
    system = torch.cat([top, bottom], dim=1)  # (K, N + 3, N + 3)
    solve = torch.linalg.inv(system)[..., :count] * keep.unsqueeze(1)  # values -> coefficients
    radial = tps_radial(torch.cdist(queries, controls).square()) * keep.unsqueeze(1)
    basis = torch.cat([radial, _affine_basis(queries)], dim=2)
    return basis @ solve


def coincident_merge_matrix(landmarks: Tensor, tolerance: float = 0.5) -> Tensor:
    """(K, L, L) matrix M mapping landmark displacements to control values: row i of the first landmark of a
    group closer than ``tolerance`` pixels averages the group's displacements; other rows of the group are zero.

    landmarks: (K, L, 2). Without coincident landmarks M is the identity.
    """
    close = torch.cdist(landmarks.double(), landmarks.double()) <= tolerance  # (K, L, L), reflexive
    index = torch.arange(landmarks.shape[1], device=landmarks.device)
    first = torch.where(close, index, landmarks.shape[1]).amin(dim=2)  # (K, L): first member of each group
    leader = first == index
    merge = (close & leader.unsqueeze(2)).double()
    return merge / merge.sum(2, keepdim=True).clamp(min=1)


def field_grid_points(image_size: int, field_size: int) -> Tensor:
    """Centres of a field_size^2 grid covering the image, in full-resolution pixels: (field_size^2, 2) (x, y)."""
    centres = (torch.arange(field_size, dtype=torch.float64) + 0.5) * (image_size / field_size) - 0.5
    return torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1).reshape(-1, 2)


class LandmarkWarp:
    """Forward thin-plate-spline warps of K views (one per view), driven by landmark displacements.

    landmarks: (K, L, 2) content landmarks, full-resolution pixels; image_size: full-resolution side;
    border_per_side: fixed points per border edge; field_size: side of the grid the dense field lives on;
    tracked_points: optional (K, P, 2) points whose motion is needed every iteration (vertex projections).
    """

    def __init__(self, landmarks: Tensor, image_size: int, border_per_side: int = 16, field_size: int = 128,
                 tracked_points: Optional[Tensor] = None) -> None:
        views = landmarks.shape[0]
        self.landmarks = landmarks
        self.image_size = image_size
        self.field_size = field_size
        border = border_points(image_size, border_per_side).to(landmarks.device)
        self.merge = coincident_merge_matrix(landmarks)  # (K, L, L): landmark displacements -> control values
        self.controls = torch.cat([landmarks.double(), border.expand(views, -1, -1)], dim=1)
        grid = field_grid_points(image_size, field_size).to(landmarks.device).expand(views, -1, -1)
        self.grid_points = grid.float()
        self.grid_matrix = self._landmark_columns(grid)
        self.tracked_points = tracked_points
        self.tracked_matrix = None if tracked_points is None else self._landmark_columns(tracked_points)

    def _landmark_columns(self, queries):
        """(K, Q, L) float32: displacements of the L landmarks -> the warp's displacement at the queries.

        Landmarks that coincide (a closed mouth's inner lips) act as one control point moved by their mean
        displacement; all but the first of each coincident group get a zero kernel column.
        """
        matrix = tps_interpolation_matrix(self.controls, queries, self.merge.diagonal(dim1=1, dim2=2) > 0)
        return (matrix[..., :self.landmarks.shape[1]] @ self.merge).to(self.landmarks.dtype)

    def displacement_field(self, displacements: Tensor) -> Tensor:
        """Forward displacement on the field grid: (K, L, 2) -> (K, 2, G, G), full-resolution pixels."""
        field = self.grid_matrix @ displacements  # (K, G*G, 2)
        return field.transpose(1, 2).reshape(len(field), 2, self.field_size, self.field_size)

    def move_points(self, points: Tensor, displacements: Tensor) -> Tensor:
        """Where points of the content images move: points (K, P, 2), displacements (K, L, 2) -> (K, P, 2)."""
        matrix = self._landmark_columns(points)
        return points + matrix @ displacements

    def move_tracked(self, displacements: Tensor) -> Tensor:
        """The tracked points after the warp, with gradients: (K, L, 2) -> (K, P, 2)."""
        return self.tracked_points + self.tracked_matrix @ displacements

    def inverse_field(self, field: Tensor, iterations: int = 6) -> Tensor:
        """Backward displacement b with b(q) = -u(q + b(q)) on the field grid: (K, 2, G, G) -> same."""
        views = field.shape[0]
        points = self.grid_points.reshape(views, self.field_size, self.field_size, 2)
        inverse = -field
        for _ in range(iterations):
            where = pixel_to_grid(points + inverse.permute(0, 2, 3, 1), self.image_size, self.image_size)
            inverse = -F.grid_sample(field, where, mode="bilinear", padding_mode="border", align_corners=False)
        return inverse

    def warp_images(self, images: Tensor, inverse: Tensor) -> Tensor:
        """Backward-warp images (K, C, s, s) of any scale with the inverse field (K, 2, G, G) -> (K, C, s, s)."""
        size = images.shape[-1]
        inverse = F.interpolate(inverse, size=(size, size), mode="bilinear", align_corners=False)
        centres = (torch.arange(size, device=images.device, dtype=images.dtype) + 0.5) * (self.image_size / size) - 0.5
        identity = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)  # (s, s, 2)
        where = pixel_to_grid(identity + inverse.permute(0, 2, 3, 1), self.image_size, self.image_size)
        return F.grid_sample(images, where, mode="bilinear", padding_mode="border", align_corners=False)


def warp_smoothness(field: Tensor, image_size: int) -> Tensor:
    """Total variation of a displacement field (K, 2, G, G) in pixels: mean squared finite-difference
    gradient (dimensionless, scale independent). Returns (K,)."""
    spacing = image_size / field.shape[-1]
    dx = (field[..., :, 1:] - field[..., :, :-1]) / spacing
    dy = (field[..., 1:, :] - field[..., :-1, :]) / spacing
    return (dx.square().mean((1, 2, 3)) + dy.square().mean((1, 2, 3))) / 2
