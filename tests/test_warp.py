"""Thin-plate-spline warp with coincident landmarks (a closed mouth's inner lips project onto each other)."""
import torch

from utils.style.warp import LandmarkWarp, coincident_merge_matrix


def landmarks_with_duplicates():
    generator = torch.Generator().manual_seed(1)
    points = 20 + 60 * torch.rand(1, 10, 2, generator=generator)
    points[0, 7] = points[0, 3]  # exact duplicate
    points[0, 8] = points[0, 5] + 0.1  # within the merge tolerance
    return points


def test_merge_matrix_averages_each_coincident_group_once():
    merge = coincident_merge_matrix(landmarks_with_duplicates())[0]
    assert torch.allclose(merge[3, [3, 7]], torch.tensor([0.5, 0.5], dtype=merge.dtype))
    assert merge[7].abs().sum() == 0 and merge[8].abs().sum() == 0
    assert torch.allclose(merge.sum(1)[[0, 1, 2, 3, 4, 5, 6, 9]], torch.ones(8, dtype=merge.dtype))
    distinct = torch.tensor([[[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]])
    assert torch.equal(coincident_merge_matrix(distinct)[0], torch.eye(3, dtype=merge.dtype))


def test_warp_with_coincident_landmarks_is_finite_and_interpolates_the_mean_displacement():
    landmarks = landmarks_with_duplicates()
    warp = LandmarkWarp(landmarks, 96, border_per_side=4, field_size=24, tracked_points=landmarks.clone())
    displacements = torch.zeros_like(landmarks)
    displacements[0, 3] = torch.tensor([2.0, 0.0])
    displacements[0, 7] = torch.tensor([4.0, 2.0])
    displacements[0, 1] = torch.tensor([-1.0, 1.0])
    field = warp.displacement_field(displacements)
    assert torch.isfinite(field).all() and field.abs().max() < 10
    moved = warp.move_tracked(displacements)[0] - landmarks[0]
    assert torch.allclose(moved[3], torch.tensor([3.0, 1.0]), atol=1e-3)  # the group's mean
    assert torch.allclose(moved[7], moved[3], atol=1e-3)
    assert torch.allclose(moved[1], torch.tensor([-1.0, 1.0]), atol=1e-3)  # distinct landmarks interpolate exactly
