"""Cameras for K views of a mesh, their 3x4 world-to-pixel matrices, and cameras.json.

Pixel convention everywhere: (x, y), x to the right, y down, origin at the
centre of the top-left pixel. Images are square (``image_size`` pixels a side).
PyTorch3D's NDC has +x to the left and +y up; the conversion lives here only.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
from pytorch3d.renderer import FoVPerspectiveCameras, look_at_view_transform

from utils.errors import InputError
from utils.io.files import load_json, save_json

if TYPE_CHECKING:
    from pytorch3d.renderer import CamerasBase


def frame_mesh(verts: torch.Tensor, fov_degrees: float, margin: float = 1.1) -> tuple[torch.Tensor, float]:
    """Look-at point and camera distance so the mesh's bounding box fills the frame, seen from the front.

    verts: (V, 3). Returns (at (3,) tensor: bounding-box centre, distance: float). The larger of the box's
    width and height, times ``margin``, spans the field of view at the box's front face.
    """
    lo, hi = verts.min(0).values, verts.max(0).values
    at = (lo + hi) / 2
    extent = hi - lo
    half_span = margin * float(max(extent[0], extent[1])) / 2
    distance = half_span / math.tan(math.radians(fov_degrees) / 2) + float(extent[2]) / 2
    return at, distance


def make_cameras(azimuths: Sequence[float], elevations: Sequence[float], distance: float, fov: float,
                 at: torch.Tensor | Sequence[float], device: str | torch.device = "cpu", znear: float | None = None,
                 zfar: float | None = None) -> FoVPerspectiveCameras:
    """A batch of K ``FoVPerspectiveCameras`` looking at ``at`` from the given angles (degrees).

    azimuths, elevations: sequences of K floats; distance, fov: floats; at: (3,).
    Azimuth 0 looks along -z (the mesh's +z side faces the camera), y is up.
    """
    azimuths = torch.as_tensor(azimuths, dtype=torch.float32)
    elevations = torch.as_tensor(elevations, dtype=torch.float32)
    at = torch.as_tensor(at, dtype=torch.float32).reshape(1, 3).expand(len(azimuths), 3)
    R, T = look_at_view_transform(dist=distance, elev=elevations, azim=azimuths, at=at)
    znear = distance / 10 if znear is None else znear
    zfar = distance * 10 if zfar is None else zfar
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=znear, zfar=zfar, device=device)


def ndc_to_pixel_matrix(image_size: int, dtype: torch.dtype = torch.float32,
                        device: str | torch.device = "cpu") -> torch.Tensor:
    """(3, 3) affine map from homogeneous PyTorch3D NDC (x, y, w) to pixel (x, y, w)."""
    half = image_size / 2.0
    return torch.tensor([[-half, 0.0, half - 0.5],
                         [0.0, -half, half - 0.5],
                         [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def world_to_pixel(cameras: CamerasBase, image_size: int) -> torch.Tensor:
    """(K, 3, 4) matrices P with [x w, y w, w] = P [X, Y, Z, 1] in pixels, w the view depth."""
    full = cameras.get_full_projection_transform().get_matrix()  # (K, 4, 4), row-vector convention
    rows = full.transpose(1, 2)[:, [0, 1, 3], :]  # ndc x, ndc y, w rows
    return ndc_to_pixel_matrix(image_size, full.dtype, full.device) @ rows


def project(points: torch.Tensor, P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into K views.

    points: (V, 3); P: (K, 3, 4). Returns (pixels (V, K, 2) as (x, y), depth (V, K)).
    """
    homogeneous = torch.cat([points, torch.ones_like(points[:, :1])], dim=1)  # (V, 4)
    projected = torch.einsum("kij,vj->vki", P, homogeneous)  # (V, K, 3)
    depth = projected[..., 2]
    return projected[..., :2] / depth.unsqueeze(-1), depth


def save_cameras(path: str | Path, cameras: FoVPerspectiveCameras, image_size: int, azimuths: Sequence[float],
                 elevations: Sequence[float], distance: float, fov: float, at: Sequence[float],
                 extra: Mapping[str, Any] | None = None) -> None:
    """Write cameras.json: the image size and, per view, the angles, R, T and P (3x4 world-to-pixel).

    ``extra``: more top-level entries to store (a dict), e.g. what was rendered and how.
    """
    P = world_to_pixel(cameras, image_size)
    views = []
    for k in range(len(P)):
        views.append({
            "azimuth": float(azimuths[k]), "elevation": float(elevations[k]),
            "distance": float(distance), "fov": float(fov), "at": [float(a) for a in at],
            "znear": float(cameras.znear[k]), "zfar": float(cameras.zfar[k]),
            "R": cameras.R[k].tolist(), "T": cameras.T[k].tolist(), "P": P[k].tolist(),
        })
    save_json(path, {"image_size": int(image_size), "convention": "pixel (x, y), origin at top-left pixel centre",
                     "views": views, **(extra or {})})


def load_cameras(path: str | Path,
                 device: str | torch.device = "cpu") -> tuple[FoVPerspectiveCameras, torch.Tensor, int, list[dict]]:
    """Read cameras.json. Returns (cameras: K FoVPerspectiveCameras, P: (K, 3, 4), image_size: int, views: list)."""
    data = load_json(path)
    try:
        views = data["views"]
        image_size = int(data["image_size"])
        R = torch.tensor([v["R"] for v in views], dtype=torch.float32)
        T = torch.tensor([v["T"] for v in views], dtype=torch.float32)
        fov = torch.tensor([v["fov"] for v in views], dtype=torch.float32)
        znear = torch.tensor([v["znear"] for v in views], dtype=torch.float32)
        zfar = torch.tensor([v["zfar"] for v in views], dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: not a cameras file written by rendering.py ({err}); re-run rendering.py") from None
    cameras = FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=znear, zfar=zfar, device=device)
    return cameras, world_to_pixel(cameras, image_size), image_size, views
