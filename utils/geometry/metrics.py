"""Quality figures of a reconstructed mesh: reprojection, image fidelity, flipped faces, displacement; folds.

Image figures (PSNR, SSIM) are measured inside the footprint of the rendered
mesh (pixels it covers), eroded by one pixel: the background does not inflate
them, and silhouette pixels, which flip between mesh and background under
sub-pixel motion, do not dominate them.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import kornia.metrics
import torch
import torch.nn.functional as F

from utils.rendering.cameras import project

if TYPE_CHECKING:
    from utils.io.mesh import Mesh

SSIM_WINDOW = 11


def footprint_interior(zbuf: torch.Tensor) -> torch.Tensor:
    """(K, S, S) bool: pixels the mesh covers whose eight neighbours it covers too. zbuf: (K, S, S), -1 off the mesh."""
    covered = (zbuf >= 0).to(torch.float32)[:, None]
    return (-F.max_pool2d(-covered, kernel_size=3, stride=1, padding=1))[:, 0] > 0.5


def reprojection_errors(verts: torch.Tensor, P: torch.Tensor, verts2d_target: torch.Tensor,
                        visible: torch.Tensor) -> dict[str, list[float]]:
    """Pixel distance between the projections of ``verts`` and the targets, per view, visible vertices only.

    verts: (V, 3); P: (K, 3, 4); verts2d_target: (V, K, 2) pixel (x, y); visible: (V, K) bool.
    Returns {"mean": [K floats], "median": [K floats], "max": [K floats]} (NaN for a view with no visible vertex).
    """
    pixels, _ = project(verts.double(), P.double().to(verts.device))
    distance = (pixels - verts2d_target.double().to(verts.device)).norm(dim=-1)  # (V, K)
    visible = visible.to(verts.device)
    count = visible.sum(0)
    mean = torch.where(visible, distance, 0.0).sum(0) / count.clamp(min=1)
    worst = torch.where(visible, distance, float("-inf")).amax(0)
    median = torch.stack([distance[visible[:, k], k].median() if bool(count[k]) else mean[k]
                          for k in range(len(count))])
    nan = torch.full_like(mean, float("nan"))
    return {name: torch.where(count > 0, value, nan).tolist()
            for name, value in (("mean", mean), ("median", median), ("max", worst))}


def masked_psnr(renders: torch.Tensor, targets: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
    """(K,) PSNR in dB of each render against its target over the footprint pixels.

    renders, targets: (K, 3, S, S) in [0, 1]; footprint: (K, S, S) bool.
    """
    weight = footprint[:, None].to(renders.dtype).expand_as(renders)
    mse = ((renders - targets) ** 2 * weight).sum((1, 2, 3)) / weight.sum((1, 2, 3)).clamp(min=1)
    return 10 * torch.log10(1.0 / mse.clamp(min=1e-12))


def masked_ssim(renders: torch.Tensor, targets: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
    """(K,) mean SSIM (kornia, 11-px Gaussian window) of each render against its target over the footprint."""
    ssim_map = kornia.metrics.ssim(renders, targets, SSIM_WINDOW).mean(1)  # (K, S, S)
    weight = footprint.to(ssim_map.dtype)
    return (ssim_map * weight).sum((1, 2)) / weight.sum((1, 2)).clamp(min=1)


def flipped_face_share(verts_before: torch.Tensor, verts_after: torch.Tensor, faces: torch.Tensor) -> float:
    """Share (float in [0, 1]) of faces whose normal points against its direction in the input mesh."""
    before, after = _face_normals(verts_before, faces), _face_normals(verts_after, faces)
    return float(((before * after).sum(1) < 0).double().mean())


def folded_edge_share(verts: torch.Tensor, faces: torch.Tensor, degrees: float = 60.0) -> float:
    """Share (float in [0, 1]) of the edges between two faces where the surface folds by more than ``degrees``
    (the angle between the two faces' normals). verts: (V, 3); faces: (F, 3)."""
    normals = F.normalize(_face_normals(verts.double(), faces), dim=1)
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2).sort(1).values
    keys, order = (edges[:, 0] * len(verts) + edges[:, 1]).sort()
    same = keys[1:] == keys[:-1]  # one edge's two entries sort side by side; their faces are order // 3
    cosine = (normals[order[:-1][same] // 3] * normals[order[1:][same] // 3]).sum(1)
    return float((cosine < math.cos(math.radians(degrees))).double().mean()) if len(cosine) else 0.0


def displacement_stats(verts_before: torch.Tensor, verts_after: torch.Tensor) -> dict[str, float]:
    """Mean and max vertex displacement relative to the input's bounding-box diagonal."""
    diagonal = (verts_before.amax(0) - verts_before.amin(0)).norm()
    relative = (verts_after - verts_before).norm(dim=1) / diagonal
    return {"mean": float(relative.mean()), "max": float(relative.max())}


def reconstruction_metrics(mesh_in: Mesh, mesh_out: Mesh, P: torch.Tensor, verts2d_target: torch.Tensor,
                           visible: torch.Tensor, renders: torch.Tensor, targets: torch.Tensor,
                           footprint: torch.Tensor) -> dict[str, Any]:
    """All figures as a JSON-ready dict; per-view lists are in view order.

    mesh_in, mesh_out: ``utils.io.mesh.Mesh`` with the same faces; P: (K, 3, 4);
    verts2d_target: (V, K, 2); visible: (V, K) bool; renders, targets: (K, 3, S, S); footprint: (K, S, S) bool.
    """
    verts_in, verts_out = mesh_in.verts.to(mesh_out.verts.device), mesh_out.verts.detach()
    reprojection = reprojection_errors(verts_out, P, verts2d_target, visible)
    return {
        "reprojection_px_mean": reprojection["mean"],
        "reprojection_px_median": reprojection["median"],
        "reprojection_px_max": reprojection["max"],
        "psnr_db": masked_psnr(renders, targets, footprint).tolist(),
        "ssim": masked_ssim(renders, targets, footprint).tolist(),
        "image_metrics_region": "rendered mesh footprint eroded by one pixel",
        "flipped_face_share": flipped_face_share(verts_in, verts_out, mesh_out.faces.to(verts_out.device)),
        "displacement_rel_bbox": displacement_stats(verts_in, verts_out),
    }


def _face_normals(verts, faces):
    """(F, 3) unnormalised face normals (cross product of two edges)."""
    corners = verts[faces]  # (F, 3, 3)
    return torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
