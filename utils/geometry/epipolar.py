"""Epipolar geometry of two views: the fundamental matrix from their cameras and the Sampson distance.

Two pixel positions x1, x2 (views 1 and 2) can be projections of one 3D point only when x2' F x1 = 0 (x
homogeneous). The Sampson distance is the first-order distance in pixels from (x1, x2) to the nearest pair that
satisfies it: the part of a disagreement between the views that no triangulated point can explain.
"""
import torch
from torch import Tensor


def camera_centre(P: Tensor) -> Tensor:
    """The centre C (4,) homogeneous, with P C = 0, of a (3, 4) finite camera."""
    centre = -torch.linalg.solve(P[:, :3], P[:, 3])
    return torch.cat([centre, centre.new_ones(1)])


def fundamental_matrix(first: Tensor, second: Tensor) -> Tensor:
    """F (3, 3) float64 with x2' F x1 = 0 for the pixels x1 = first X and x2 = second X of every point X.

    first, second: (3, 4) world-to-pixel camera matrices (``utils.rendering.cameras.world_to_pixel``).
    F = [e2]x second first^+, e2 = second C1 the epipole of the first camera's centre in the second view.
    """
    first, second = first.double(), second.double()
    epipole = second @ camera_centre(first)
    cross = torch.zeros(3, 3, dtype=torch.float64, device=first.device)
    cross[0, 1], cross[0, 2], cross[1, 2] = -epipole[2], epipole[1], -epipole[0]
    cross = cross - cross.T
    fundamental = cross @ second @ torch.linalg.pinv(first)
    return fundamental / fundamental.norm()


def sampson_distance(fundamental: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """Sampson distance in pixels of point pairs: fundamental (3, 3); first, second: (P, 2) pixel (x, y) in
    views 1 and 2. Returns (P,) (differentiable; 0 for pairs exactly on each other's epipolar lines)."""
    fundamental = fundamental.to(first.dtype)
    one = torch.ones_like(first[:, :1])
    x1, x2 = torch.cat([first, one], 1), torch.cat([second, one], 1)  # (P, 3)
    line2, line1 = x1 @ fundamental.T, x2 @ fundamental  # F x1 (lines in view 2), F' x2 (lines in view 1)
    algebraic = (x2 * line2).sum(1)
    gradient = line2[:, :2].square().sum(1) + line1[:, :2].square().sum(1)
    return algebraic.abs() / gradient.clamp(min=1e-30).sqrt()
