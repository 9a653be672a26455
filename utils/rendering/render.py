"""Rendering K views of one mesh (unlit colours or a simple headlight) and vertex visibility.

The rasterizer is a swappable piece (``utils.rendering.raster.make_rasterizer``): the
project's fast rasterizer on CPU, PyTorch3D's own on CUDA.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

import torch
from pytorch3d.renderer import BlendParams, DirectionalLights, HardPhongShader, RasterizationSettings
from pytorch3d.renderer.blending import hard_rgb_blend

from utils.rendering.raster import make_rasterizer

if TYPE_CHECKING:
    from pytorch3d.renderer import CamerasBase
    from pytorch3d.renderer.mesh.rasterizer import Fragments
    from pytorch3d.structures import Meshes


UNIT_RANGE = (1e-2, 1e4)  # camera distances rasterized as they are; others are rescaled to 1 (see _unit_scale)


def rasterize_views(meshes: Meshes, cameras: CamerasBase, image_size: int, backend: str = "auto") -> Fragments:
    """Rasterize a ``Meshes`` of batch 1 in each of the K cameras; returns PyTorch3D ``Fragments`` (K, S, S, 1).

    A scene at any scale: it is rasterized rescaled to a unit camera distance and its depths scaled back.
    """
    settings = RasterizationSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)
    scale = _unit_scale(cameras)
    if scale != 1.0:
        meshes, cameras = meshes.scale_verts(scale), _scaled_cameras(cameras, scale)
    rasterizer = make_rasterizer(cameras, settings, backend=backend)
    fragments = rasterizer(meshes.extend(len(cameras)))
    if scale != 1.0:
        fragments = dataclasses.replace(fragments, zbuf=torch.where(fragments.zbuf > 0, fragments.zbuf / scale,
                                                                    fragments.zbuf))
    return fragments


def _unit_scale(cameras):
    """1, or the factor bringing the camera distance (10 x znear, as make_cameras sets it) to 1 when it lies
    outside ``UNIT_RANGE``: the rasterizers' fixed epsilon (1e-8 on products of depths) makes a mesh 1e-6 across
    render with every depth wrong (measured: all vertices hidden)."""
    znear = cameras.znear
    distance = 10 * float(znear.min() if isinstance(znear, torch.Tensor) else znear)
    return 1.0 if UNIT_RANGE[0] <= distance <= UNIT_RANGE[1] or distance <= 0 else 1.0 / distance


def _scaled_cameras(cameras, scale):
    """The same perspective cameras for the scene scaled by ``scale`` about the origin (T, znear, zfar scaled)."""
    scaled = cameras.clone()
    scaled.T = cameras.T * scale
    for name in ("znear", "zfar"):
        value = getattr(cameras, name)
        setattr(scaled, name, value * scale)
    return scaled


def render_views(meshes: Meshes, cameras: CamerasBase, image_size: int, backend: str = "auto",
                 light: float | None = None,
                 background: Sequence[float] = (1.0, 1.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a ``Meshes`` of batch 1 (vertex colours or UV texture) from K cameras.

    light=None renders the colours unlit (what the content views and the reconstruction use);
    a float in (0, 1] adds a headlight per view with that diffuse share (the rest ambient).
    Differentiable with respect to vertex positions and colours.
    Returns (images (K, 3, S, S) in [0, 1], zbuf (K, S, S) view depth, -1 on the background).
    """
    fragments = rasterize_views(meshes, cameras, image_size, backend)
    batch = meshes.extend(len(cameras))
    blend = BlendParams(background_color=tuple(background))
    if light is None:
        texels = batch.sample_textures(fragments)
        rgba = hard_rgb_blend(texels, fragments, blend)
    else:
        lights = headlights(cameras, float(light))
        shader = HardPhongShader(device=batch.device, cameras=cameras, lights=lights, blend_params=blend)
        rgba = shader(fragments, batch, cameras=cameras, lights=lights)
    return rgba[..., :3].permute(0, 3, 1, 2).clamp(0, 1), fragments.zbuf[..., 0]


def headlights(cameras: CamerasBase, diffuse: float) -> DirectionalLights:
    """One directional light per view shining from the camera, ``diffuse`` share diffuse, the rest ambient."""
    centres = cameras.get_camera_center()  # (K, 3)
    direction = torch.nn.functional.normalize(centres, dim=1)
    count = len(centres)
    ambient = torch.full((count, 3), 1.0 - diffuse, device=centres.device)
    return DirectionalLights(device=centres.device, direction=direction, ambient_color=ambient,
                             diffuse_color=torch.full((count, 3), diffuse, device=centres.device),
                             specular_color=torch.zeros(count, 3, device=centres.device))


def vertex_visibility(pixels: torch.Tensor, depth: torch.Tensor, zbuf: torch.Tensor,
                      tolerance: float) -> torch.Tensor:
    """Depth test of every vertex in every view.

    pixels: (V, K, 2) pixel (x, y); depth: (V, K) view depth; zbuf: (K, S, S) with -1 on the background;
    tolerance: depth slack in scene units. A vertex is visible in a view when it projects inside the image
    and is no farther than the farthest surface seen at the four pixels around it (plus the tolerance), so
    vertices on silhouettes and occlusion edges count as visible. Returns (V, K) bool.
    """
    size = zbuf.shape[-1]
    offsets = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], device=pixels.device)
    neighbours = pixels.floor().long().unsqueeze(2) + offsets  # (V, K, 4, 2)
    inside = ((neighbours >= 0) & (neighbours < size)).all(-1)  # (V, K, 4)
    x = neighbours[..., 0].clamp(0, size - 1)
    y = neighbours[..., 1].clamp(0, size - 1)
    view = torch.arange(zbuf.shape[0], device=zbuf.device).view(1, -1, 1).expand_as(x)
    surface = zbuf[view, y, x]  # (V, K, 4)
    surface = torch.where(inside & (surface > 0), surface, torch.full_like(surface, -float("inf")))
    farthest_surface = surface.amax(-1)  # (V, K), -inf where no surface is around
    covered = torch.isfinite(farthest_surface)
    in_frame = inside.any(-1) & (depth > 0)
    return in_frame & (~covered | (depth <= farthest_surface + tolerance))
