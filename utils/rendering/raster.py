"""A fast, differentiable hard mesh rasterizer in plain torch that returns PyTorch3D ``Fragments``.

PyTorch3D's rasterizer on CPU tests every pixel against every face: 59 s per
512x512 frame of an 82k-face mesh, where a bounding-box pass takes 0.12 s
(bench/bench_raster.py), hence this one. ``FastMeshRasterizer`` instead
enumerates, for each face, only the pixel centres inside its bounding box,
keeps the (face, pixel) pairs whose pixel lies inside the face, and depth-tests
them with one ``scatter_reduce(amin)`` on a packed (depth, face) int64 key. The
pairs are made in chunks of at most ``max_pairs_per_chunk`` so large faces do
not blow up memory.

Like PyTorch3D's hard rasterizer, the choice of face per pixel is not
differentiable (it runs under ``torch.no_grad()``); barycentric coordinates,
z-buffer and distances are then recomputed for the winning (pixel, face) pairs
with autograd from the projected vertices, so gradients reach the vertices
through any interpolated attribute.

Conventions are PyTorch3D's: NDC with +x left and +y up, pixel centres at
``PixToNonSquareNdc``, ``pix_to_face`` a packed face index or -1, ``zbuf`` the
view-space z, ``dists`` the signed squared NDC distance to the nearest edge
(negative inside), -1 everywhere a pixel is empty.

Scope: ``faces_per_pixel=1`` and ``blur_radius=0`` only. Faces with a vertex
in front of the clipping plane (``z_clip_value``; by default ``znear / 2`` with
perspective correction, as PyTorch3D) are dropped whole, where PyTorch3D would
clip them to the visible part.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from pytorch3d.renderer import MeshRasterizer
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.renderer.utils import parse_image_size

if TYPE_CHECKING:
    from pytorch3d.renderer import CamerasBase, RasterizationSettings
    from pytorch3d.structures import Meshes

K_EPSILON = 1e-8  # PyTorch3D's kEpsilon: zero-area threshold and barycentric denominator offset
DEFAULT_MAX_PAIRS = 2_000_000  # candidate (face, pixel) pairs enumerated at once
_EMPTY_KEY = torch.iinfo(torch.int64).max
_BBOX_SLACK = 1e-3  # pixels; widens bounding boxes, the exact inside test decides


class FastMeshRasterizer(MeshRasterizer):
    """Drop-in replacement for PyTorch3D's ``MeshRasterizer`` (hard rasterization, one face per pixel).

    Same constructor, ``to(device)``, ``cameras`` attribute, ``transform`` and
    ``forward(meshes_world, **kwargs)`` (kwargs may override ``cameras``, ``raster_settings``, R, T, ...).
    ``max_pairs_per_chunk`` bounds the candidate (face, pixel) pairs held in memory at once (a chunk
    holds at most about twice that, and never less than one image row of one face).
    """

    def __init__(self, cameras: CamerasBase | None = None, raster_settings: RasterizationSettings | None = None,
                 max_pairs_per_chunk: int = DEFAULT_MAX_PAIRS) -> None:
        super().__init__(cameras=cameras, raster_settings=raster_settings)
        self.max_pairs_per_chunk = int(max_pairs_per_chunk)

    def forward(self, meshes_world: Meshes, **kwargs: Any) -> Fragments:
        """Rasterize N meshes (with 1 or N cameras). Returns ``Fragments`` with (N, H, W, 1[, 3]) tensors."""
        settings = kwargs.get("raster_settings", self.raster_settings)
        cameras = kwargs.get("cameras", self.cameras)
        _check_settings(settings)
        perspective_correct = (settings.perspective_correct if settings.perspective_correct is not None
                               else cameras.is_perspective())
        meshes_proj = self.transform(meshes_world, **kwargs)
        corners = face_corners(meshes_proj.verts_packed(), meshes_proj.faces_packed())
        image_size = parse_image_size(settings.image_size)
        with torch.no_grad():
            drawable = drawable_faces(corners, settings.cull_backfaces,
                                      _z_clip_value(settings, cameras, perspective_correct))
            pix_to_face = nearest_faces(corners, meshes_proj.faces_packed_to_mesh_idx(), drawable,
                                        len(meshes_proj), image_size, perspective_correct,
                                        self.max_pairs_per_chunk)
        return fragments_for_faces(corners, pix_to_face, image_size, perspective_correct)


def resolve_backend(backend: str, device: torch.device | None) -> str:
    """The rasterizer "auto" means on ``device`` (a torch.device or None): "pytorch3d" on CUDA, else "fast"; any
    other backend is returned as it is."""
    if backend != "auto":
        return backend
    return "pytorch3d" if device is not None and device.type == "cuda" else "fast"


def make_rasterizer(cameras: CamerasBase | None, raster_settings: RasterizationSettings | None,
                    backend: str = "auto") -> MeshRasterizer:
    """A mesh rasterizer: "fast" -> ``FastMeshRasterizer``, "pytorch3d" -> PyTorch3D's ``MeshRasterizer``.

    "auto" picks the fast one on CPU and PyTorch3D's (binned CUDA kernel) on CUDA, where the fast one's
    advantage is not established; bench/bench_gpu.py times both on a GPU.
    """
    backend = resolve_backend(backend, cameras.device if cameras is not None else None)
    if backend == "fast":
        return FastMeshRasterizer(cameras=cameras, raster_settings=raster_settings)
    if backend == "pytorch3d":
        return MeshRasterizer(cameras=cameras, raster_settings=raster_settings)
    raise ValueError(f"unknown rasterizer backend '{backend}'; use 'auto', 'fast' or 'pytorch3d'")


def _check_settings(settings):
    """Reject settings this rasterizer does not implement."""
    if settings.faces_per_pixel != 1:
        raise ValueError(f"FastMeshRasterizer supports faces_per_pixel=1 only (got {settings.faces_per_pixel}); "
                         "use PyTorch3D's MeshRasterizer for more")
    if settings.blur_radius != 0:
        raise ValueError(f"FastMeshRasterizer supports blur_radius=0 only (got {settings.blur_radius}); "
                         "use PyTorch3D's MeshRasterizer for soft rasterization")


def _z_clip_value(settings, cameras, perspective_correct):
    """Depth below which faces are dropped: PyTorch3D's rule (z_clip_value, else znear/2 when perspective)."""
    if settings.z_clip_value is not None:
        return float(settings.z_clip_value)
    znear = cameras.get_znear() if perspective_correct else None
    if isinstance(znear, torch.Tensor):
        znear = float(znear.min())
    return None if znear is None else znear / 2


def face_corners(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(3, 3, F) face corner coordinates indexed [coordinate (x, y, z), corner, face], with autograd.

    verts: (V, 3); faces: (F, 3) int64. Faces last keeps every per-face operation contiguous.
    """
    return verts.T.index_select(1, faces.T.reshape(-1)).view(3, 3, len(faces))


def pixel_centres_ndc(size: int, other_size: int, dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> torch.Tensor:
    """(size,) NDC coordinate of each pixel centre along an axis, index 0 at the +1 side (PyTorch3D's flip).

    For non-square images the shorter side spans [-1, 1] and the longer one proportionally more.
    Same float arithmetic as PyTorch3D's ``PixToNonSquareNdc`` so edge pixels agree.
    """
    ndc_range = 2.0 * max(size / other_size, 1.0)
    offset = ndc_range / 2.0
    index = torch.arange(size - 1, -1, -1, dtype=dtype, device=device)
    return -offset + (ndc_range * index + offset) / size


def _edge(p_x, p_y, a_x, a_y, b_x, b_y):
    """PyTorch3D's edge function (p - a) x (b - a), elementwise on any broadcastable tensors."""
    return (p_x - a_x) * (b_y - a_y) - (p_y - a_y) * (b_x - a_x)


def _signed_area(x, y):
    """(F,) PyTorch3D's face area (twice the signed area, positive for front faces). x, y: (3, F)."""
    return _edge(x[0], y[0], x[1], y[1], x[2], y[2])


def _corner_edges(px, py, x, y):
    """(3, P) edge functions, row i for the edge from corner i+1 to corner i+2 (PyTorch3D's numerators).

    px, py: (P,) points; x, y: (3, P) corners of the face paired with each point.
    """
    start_x, start_y = torch.roll(x, -1, 0), torch.roll(y, -1, 0)
    return _edge(px, py, start_x, start_y, torch.roll(x, -2, 0), torch.roll(y, -2, 0))


def drawable_faces(corners: torch.Tensor, cull_backfaces: bool, z_clip: float | None) -> torch.Tensor:
    """(F,) bool: finite faces with non-zero screen area, not culled, entirely in front of the clip depth.

    corners: (3, 3, F) NDC x, y and view z of each face's corners.
    """
    x, y, z = corners
    area = _signed_area(x, y)
    keep = (area.abs() > K_EPSILON) & torch.isfinite(x.sum(0) + y.sum(0))
    if cull_backfaces:
        keep &= area >= 0
    z_min = z.amin(dim=0)
    keep &= z_min >= max(K_EPSILON, z_clip if z_clip is not None else K_EPSILON)
    return keep


def _pixel_ranges(corners, image_size):
    """Inclusive integer pixel ranges covered by each face's bounding box, clipped to the image.

    corners: (3, 3, F). Returns (x_lo, x_hi, y_lo, y_hi), each (F,) int64 (lo > hi when empty).
    """
    height, width = image_size
    scale = min(height, width)
    x, y = corners[0], corners[1]
    # Pixel index as a continuous function of NDC: i = (S - 1 - scale * ndc) / 2 (the axis is flipped).
    # Clamped on both sides so that far-off (or non-finite) faces convert to int safely and stay empty.
    x_lo = torch.ceil((width - 1 - scale * x.amax(0)) / 2 - _BBOX_SLACK).clamp(0, width)
    x_hi = torch.floor((width - 1 - scale * x.amin(0)) / 2 + _BBOX_SLACK).clamp(-1, width - 1)
    y_lo = torch.ceil((height - 1 - scale * y.amax(0)) / 2 - _BBOX_SLACK).clamp(0, height)
    y_hi = torch.floor((height - 1 - scale * y.amin(0)) / 2 + _BBOX_SLACK).clamp(-1, height - 1)
    return x_lo.long(), x_hi.long(), y_lo.long(), y_hi.long()


def _row_bands(x_lo, x_hi, y_lo, y_hi, max_pairs):
    """Split each face's pixel box into bands of whole rows holding at most ``max_pairs`` pixels.

    Inputs: (C,) int64 for C faces with non-empty boxes. Returns a (5, bands) int64 tensor with rows
    (face index into the inputs, x_lo, width, y_lo, rows); a band has at least one row, so it exceeds
    ``max_pairs`` only if a single row of a face does.
    """
    width = x_hi - x_lo + 1
    height = y_hi - y_lo + 1
    if len(width) == 0 or int((width * height).amax()) <= max_pairs:  # the usual case: one band per face
        return torch.stack([torch.arange(len(width), device=width.device), x_lo, width, y_lo, height])
    rows_per_band = torch.div(max_pairs, width, rounding_mode="floor").clamp(min=1)
    bands_per_face = torch.div(height + rows_per_band - 1, rows_per_band, rounding_mode="floor")
    face = torch.repeat_interleave(bands_per_face)
    per_face = torch.stack([torch.cumsum(bands_per_face, 0) - bands_per_face, x_lo, width, y_lo, y_hi,
                            rows_per_band])
    first_band, band_x_lo, band_width, face_y_lo, face_y_hi, band_rows = per_face.index_select(1, face)
    band_y_lo = face_y_lo + (torch.arange(len(face), device=face.device) - first_band) * band_rows
    rows = torch.minimum(band_rows, face_y_hi - band_y_lo + 1)
    return torch.stack([face, band_x_lo, band_width, band_y_lo, rows])


def _chunk_bounds(pair_counts, max_pairs):
    """Split consecutive items into chunks of about ``max_pairs`` pairs (at most twice that when each
    item holds at most ``max_pairs``). pair_counts: (B,) int64. Returns a list of (start, end)."""
    if len(pair_counts) == 0:
        return []
    ends = torch.cumsum(pair_counts, 0)
    chunk_of_item = torch.div(ends - pair_counts, max_pairs, rounding_mode="floor")
    boundaries = torch.nonzero(chunk_of_item[1:] != chunk_of_item[:-1]).flatten() + 1
    edges = [0] + boundaries.tolist() + [len(pair_counts)]
    return list(zip(edges[:-1], edges[1:]))


def _band_pixels(bands):
    """Enumerate every pixel of each band. bands: (5, B) from ``_row_bands``. Returns (face, x, y), each (P,)."""
    face, x_lo, width, y_lo, rows = bands
    counts = width * rows
    band = torch.repeat_interleave(counts)
    per_band = torch.stack([torch.cumsum(counts, 0) - counts, face, x_lo, width, y_lo])
    start, pair_face, pair_x_lo, pair_width, pair_y_lo = per_band.index_select(1, band)
    local = torch.arange(len(band), device=band.device) - start
    row = torch.div(local, pair_width, rounding_mode="floor")
    return pair_face, pair_x_lo + (local - row * pair_width), pair_y_lo + row


def _face_table(corners, perspective_correct):
    """(3, 3, C) per-face constants gathered per candidate pair: corner x, corner y, depth weights.

    "Inside" means every edge function has the sign of the face's area (all barycentrics > 0, as
    in PyTorch3D). The depth under a pixel is sum_i e_i * weight_i (affine) or its reciprocal
    (perspective-correct), with e_i the edge functions oriented by that sign.
    corners: (3, 3, C) NDC x, y, view z.
    """
    x, y, z = corners
    area = _signed_area(x, y) + K_EPSILON
    sign = torch.where(area < 0, -1.0, 1.0).to(x.dtype)
    weight = 1.0 / (z * area.abs()) if perspective_correct else z / area.abs()
    return torch.stack([x, y, sign * weight])


def _packed_keys(depth, face):
    """(P,) int64 keys ordered by (depth, face) for depth >= 0: float bits in the high word, face low."""
    depth_bits = depth.float().clamp(min=0).view(torch.int32).to(torch.int64)
    return (depth_bits << 32) | face


def nearest_faces(corners: torch.Tensor, face_to_mesh: torch.Tensor, drawable: torch.Tensor, num_meshes: int,
                  image_size: Sequence[int], perspective_correct: bool,
                  max_pairs: int = DEFAULT_MAX_PAIRS) -> torch.Tensor:
    """Index of the nearest face covering each pixel centre, or -1 (not differentiable).

    corners: (3, 3, F) packed NDC x, y, view z; face_to_mesh: (F,) int64; drawable: (F,) bool.
    Returns pix_to_face (N, H, W) int64. Ties in depth go to the lower face index, as in PyTorch3D.
    """
    height, width = image_size
    device = corners.device
    corners = corners.detach()
    x_lo, x_hi, y_lo, y_hi = _pixel_ranges(corners, image_size)
    ids = torch.nonzero(drawable & (x_lo <= x_hi) & (y_lo <= y_hi)).flatten()
    candidates = corners.reshape(9, -1).index_select(1, ids).view(3, 3, -1)
    table = _face_table(candidates, perspective_correct).view(9, -1)
    first_pixel = face_to_mesh.index_select(0, ids) * (height * width)
    bands = _row_bands(*(r.index_select(0, ids) for r in (x_lo, x_hi, y_lo, y_hi)), max_pairs)
    x_ndc = pixel_centres_ndc(width, height, corners.dtype, device)
    y_ndc = pixel_centres_ndc(height, width, corners.dtype, device)
    keys = torch.full((num_meshes * height * width,), _EMPTY_KEY, dtype=torch.int64, device=device)
    for start, end in _chunk_bounds(bands[2] * bands[4], max_pairs):
        face, xi, yi = _band_pixels(bands[:, start:end])
        x, y, weight = table.index_select(1, face).view(3, 3, -1)
        edges = _corner_edges(x_ndc.index_select(0, xi), y_ndc.index_select(0, yi), x, y)
        weighted = edges * weight  # > 0 exactly where the oriented edge function is
        hit = torch.nonzero((weighted > 0).all(dim=0)).flatten()
        depth = weighted.index_select(1, hit).sum(dim=0)
        depth = 1.0 / depth if perspective_correct else depth
        face = face.index_select(0, hit)
        pixel = first_pixel.index_select(0, face) + yi.index_select(0, hit) * width + xi.index_select(0, hit)
        keys.scatter_reduce_(0, pixel, _packed_keys(depth, ids.index_select(0, face)), reduce="amin")
    pix_to_face = torch.where(keys == _EMPTY_KEY, -1, keys & 0xFFFFFFFF)
    return pix_to_face.view(num_meshes, height, width)


def _squared_edge_distance(px, py, x, y):
    """(P,) squared NDC distance from (px, py) to the nearest edge of its triangle. x, y: (3, P) corners."""
    dir_x, dir_y = torch.roll(x, -1, 0) - x, torch.roll(y, -1, 0) - y
    length2 = dir_x * dir_x + dir_y * dir_y
    t = ((px - x) * dir_x + (py - y) * dir_y) / length2.clamp(min=K_EPSILON)
    t = torch.where(length2 > K_EPSILON, t.clamp(0, 1), torch.ones_like(t))
    off_x, off_y = px - (x + t * dir_x), py - (y + t * dir_y)
    return (off_x * off_x + off_y * off_y).amin(dim=0)


def fragments_for_faces(corners: torch.Tensor, pix_to_face: torch.Tensor, image_size: Sequence[int],
                        perspective_correct: bool) -> Fragments:
    """Differentiable bary_coords, zbuf and dists for the chosen faces, as PyTorch3D ``Fragments``.

    corners: (3, 3, F) packed NDC x, y, view z (with autograd); pix_to_face: (N, H, W) int64.
    """
    height, width = image_size
    flat = pix_to_face.reshape(-1)
    covered = torch.nonzero(flat >= 0).flatten()
    face = flat.index_select(0, covered)
    xi, yi = covered % width, torch.div(covered, width, rounding_mode="floor") % height
    px = pixel_centres_ndc(width, height, corners.dtype, corners.device).index_select(0, xi)
    py = pixel_centres_ndc(height, width, corners.dtype, corners.device).index_select(0, yi)
    x, y, z = corners.reshape(9, -1).index_select(1, face).view(3, 3, -1)  # (3, P) each
    bary = _corner_edges(px, py, x, y) / (_signed_area(x, y) + K_EPSILON)  # (3, P)
    if perspective_correct:
        bary = bary * torch.roll(z, -1, 0) * torch.roll(z, -2, 0)
        bary = bary / bary.sum(dim=0).clamp(min=K_EPSILON)
    zbuf = (bary * z).sum(dim=0)
    dists = -_squared_edge_distance(px, py, x, y)

    def scatter(values):
        """Covered pixels' values (P, C) into a (N, H, W, 1, C) tensor filled with -1."""
        out = values.new_full((flat.numel(), values.shape[1]), -1.0)
        return out.index_copy(0, covered, values).view(*pix_to_face.shape, 1, values.shape[1])

    return Fragments(pix_to_face=pix_to_face.unsqueeze(-1), zbuf=scatter(zbuf[:, None]).squeeze(-1),
                     bary_coords=scatter(bary.T), dists=scatter(dists[:, None]).squeeze(-1))
