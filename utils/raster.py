"""A fast, differentiable hard mesh rasterizer in plain torch that returns PyTorch3D ``Fragments``.

PyTorch3D's rasterizer on CPU tests every pixel against every face (about a
minute per 512x512 frame of a 100k-face mesh). ``FastMeshRasterizer`` instead
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
import torch
from pytorch3d.renderer import MeshRasterizer
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.renderer.utils import parse_image_size

K_EPSILON = 1e-8  # PyTorch3D's kEpsilon: zero-area threshold and barycentric denominator offset
DEFAULT_MAX_PAIRS = 2_000_000  # candidate (face, pixel) pairs enumerated at once
_EMPTY_KEY = torch.iinfo(torch.int64).max
_BBOX_SLACK = 1e-3  # pixels; widens bounding boxes, the exact inside test decides


class FastMeshRasterizer(MeshRasterizer):
    """Drop-in replacement for PyTorch3D's ``MeshRasterizer`` (hard rasterization, one face per pixel).

    Same constructor, ``to(device)``, ``cameras`` attribute and ``forward(meshes_world, **kwargs)``
    (kwargs may override ``cameras``, ``raster_settings``, R, T, ...). ``max_pairs_per_chunk``
    bounds the candidate (face, pixel) pairs held in memory at once (at least one image row of
    one face is always enumerated together).
    """

    def __init__(self, cameras=None, raster_settings=None, max_pairs_per_chunk=DEFAULT_MAX_PAIRS):
        super().__init__(cameras=cameras, raster_settings=raster_settings)
        self.max_pairs_per_chunk = int(max_pairs_per_chunk)

    def forward(self, meshes_world, **kwargs):
        """Rasterize N meshes (with 1 or N cameras). Returns ``Fragments`` with (N, H, W, 1[, 3]) tensors."""
        settings = kwargs.get("raster_settings", self.raster_settings)
        cameras = kwargs.get("cameras", self.cameras)
        _check_settings(settings)
        perspective_correct = (settings.perspective_correct if settings.perspective_correct is not None
                               else cameras.is_perspective())
        meshes_proj = self.transform(meshes_world, **kwargs)
        face_verts = meshes_proj.verts_packed()[meshes_proj.faces_packed()]  # (F, 3, 3) NDC x, y, view z
        image_size = parse_image_size(settings.image_size)
        with torch.no_grad():
            drawable = drawable_faces(face_verts, settings.cull_backfaces,
                                      _z_clip_value(settings, cameras, perspective_correct))
            pix_to_face = nearest_faces(face_verts, meshes_proj.faces_packed_to_mesh_idx(), drawable,
                                        len(meshes_proj), image_size, perspective_correct,
                                        self.max_pairs_per_chunk)
        return fragments_for_faces(face_verts, pix_to_face, image_size, perspective_correct)


def make_rasterizer(cameras, raster_settings, backend="auto"):
    """A mesh rasterizer: "fast" -> ``FastMeshRasterizer``, "pytorch3d" -> PyTorch3D's ``MeshRasterizer``.

    "auto" picks the fast one on CPU and PyTorch3D's (binned CUDA kernel) on CUDA. No GPU was
    available when this was written, so the CUDA choice is not measured; revisit it by timing
    bench/bench_raster.py on a GPU.
    """
    if backend == "auto":
        backend = "pytorch3d" if cameras.device.type == "cuda" else "fast"
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


def pixel_centres_ndc(size, other_size, dtype=torch.float32, device="cpu"):
    """(size,) NDC coordinate of each pixel centre along an axis, index 0 at +1 side (PyTorch3D's flip).

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


def drawable_faces(face_verts, cull_backfaces, z_clip):
    """(F,) bool: faces with non-zero screen area, not culled, and entirely in front of the clip depth.

    face_verts: (F, 3, 3) NDC x, y and view z.
    """
    x, y, z = face_verts.unbind(-1)  # each (F, 3)
    area = _edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], x[:, 2], y[:, 2])
    keep = area.abs() > K_EPSILON
    if cull_backfaces:
        keep &= area >= 0
    z_min = z.min(dim=1).values
    keep &= z_min >= K_EPSILON
    if z_clip is not None:
        keep &= z_min >= z_clip
    return keep


def _pixel_ranges(face_verts, image_size):
    """Inclusive integer pixel ranges covered by each face's bounding box, clipped to the image.

    face_verts: (F, 3, 3). Returns (x_lo, x_hi, y_lo, y_hi), each (F,) int64 (lo > hi when empty).
    """
    height, width = image_size
    scale = min(height, width)
    x, y = face_verts[..., 0], face_verts[..., 1]
    # Pixel index as a continuous function of NDC: i = (S - 1 - scale * ndc) / 2 (the axis is flipped).
    x_lo = torch.ceil((width - 1 - scale * x.max(1).values) / 2 - _BBOX_SLACK).clamp(min=0)
    x_hi = torch.floor((width - 1 - scale * x.min(1).values) / 2 + _BBOX_SLACK).clamp(max=width - 1)
    y_lo = torch.ceil((height - 1 - scale * y.max(1).values) / 2 - _BBOX_SLACK).clamp(min=0)
    y_hi = torch.floor((height - 1 - scale * y.min(1).values) / 2 + _BBOX_SLACK).clamp(max=height - 1)
    return x_lo.long(), x_hi.long(), y_lo.long(), y_hi.long()


def _row_bands(face_ids, x_lo, x_hi, y_lo, y_hi, max_pairs):
    """Split each face's pixel box into bands of whole rows holding at most ``max_pairs`` pixels.

    Inputs: (B,) int64 for B faces with non-empty boxes. Returns (face, x_lo, width, y_lo, rows), each
    (bands,) int64; a band has at least one row, so it may exceed ``max_pairs`` only if one row does.
    """
    width = x_hi - x_lo + 1
    height = y_hi - y_lo + 1
    rows_per_band = (max_pairs // width).clamp(min=1)
    bands_per_face = (height + rows_per_band - 1) // rows_per_band
    face = torch.repeat_interleave(torch.arange(len(face_ids), device=face_ids.device), bands_per_face)
    first_band = torch.cumsum(bands_per_face, 0) - bands_per_face
    band_in_face = torch.arange(len(face), device=face_ids.device) - first_band[face]
    band_y_lo = y_lo[face] + band_in_face * rows_per_band[face]
    rows = torch.minimum(rows_per_band[face], y_hi[face] - band_y_lo + 1)
    return face_ids[face], x_lo[face], width[face], band_y_lo, rows


def _chunk_bounds(pair_counts, max_pairs):
    """Split consecutive items into chunks of about ``max_pairs`` pairs. pair_counts: (B,). Returns [(start, end)]."""
    ends = torch.cumsum(pair_counts, 0)
    chunk_of_item = torch.div(ends - pair_counts, max_pairs, rounding_mode="floor")
    boundaries = torch.nonzero(chunk_of_item[1:] != chunk_of_item[:-1]).flatten() + 1
    edges = [0] + boundaries.tolist() + [len(pair_counts)]
    return list(zip(edges[:-1], edges[1:]))


def _band_pixels(face, x_lo, width, y_lo, rows):
    """Enumerate every pixel of each band. Inputs (B,) int64. Returns (face, x, y), each (P,) int64."""
    counts = width * rows
    band = torch.repeat_interleave(torch.arange(len(face), device=face.device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(band), device=face.device) - start[band]
    band_width = width[band]
    return face[band], x_lo[band] + local % band_width, y_lo[band] + torch.div(local, band_width,
                                                                                 rounding_mode="floor")


class _FaceTable:
    """Per-face constants for inside tests and depth, as (F,) rows gathered per candidate pair.

    Edge functions are computed exactly as PyTorch3D does (same operand order), with each face's
    orientation folded in so that "inside" means all three edge values > 0.
    """

    def __init__(self, face_verts, perspective_correct):
        x, y, z = face_verts.unbind(-1)  # (F, 3) each
        area = _edge(x[:, 2], y[:, 2], x[:, 0], y[:, 0], x[:, 1], y[:, 1]) + K_EPSILON
        sign = torch.where(area < 0, -1.0, 1.0).to(x.dtype)
        self.anchor_x, self.anchor_y = x[:, [1, 2, 0]].T, y[:, [1, 2, 0]].T  # (3, F): edge i starts here
        self.delta_x = sign * (x[:, [2, 0, 1]] - x[:, [1, 2, 0]]).T  # (3, F)
        self.delta_y = sign * (y[:, [2, 0, 1]] - y[:, [1, 2, 0]]).T
        if perspective_correct:  # z = 1 / sum(e_i / (|area| z_i))
            self.depth_weight = (1.0 / (z * area.abs()[:, None])).T
        else:  # z = sum(e_i z_i) / |area|
            self.depth_weight = (z / area.abs()[:, None]).T
        self.perspective_correct = perspective_correct

    def inside(self, face, px, py):
        """(P,) bool: pixel (px, py) strictly inside face. face: (P,) int64; px, py: (P,) NDC."""
        result = None
        for i in range(3):
            e = (px - self.anchor_x[i, face]) * self.delta_y[i, face] - \
                (py - self.anchor_y[i, face]) * self.delta_x[i, face]
            result = e > 0 if result is None else result & (e > 0)
        return result

    def depth(self, face, px, py):
        """(P,) view-space z of the face under each pixel (interpolated as the final bary will be)."""
        total = 0.0
        for i in range(3):
            e = (px - self.anchor_x[i, face]) * self.delta_y[i, face] - \
                (py - self.anchor_y[i, face]) * self.delta_x[i, face]
            total = total + e * self.depth_weight[i, face]
        return 1.0 / total if self.perspective_correct else total


def _packed_keys(depth, face):
    """(P,) int64 keys ordered by (depth, face) for depth >= 0: float bits in the high word, face low."""
    depth_bits = depth.float().clamp(min=0).view(torch.int32).to(torch.int64)
    return (depth_bits << 32) | face


def nearest_faces(face_verts, face_to_mesh, drawable, num_meshes, image_size, perspective_correct,
                  max_pairs=DEFAULT_MAX_PAIRS):
    """Index of the nearest face covering each pixel centre, or -1 (not differentiable).

    face_verts: (F, 3, 3) packed NDC x, y, view z; face_to_mesh: (F,) int64; drawable: (F,) bool.
    Returns pix_to_face (N, H, W) int64. Ties in depth go to the lower face index, as in PyTorch3D.
    """
    height, width = image_size
    device = face_verts.device
    face_verts = face_verts.detach()
    x_lo, x_hi, y_lo, y_hi = _pixel_ranges(face_verts, image_size)
    candidate = drawable & (x_lo <= x_hi) & (y_lo <= y_hi)
    ids = torch.nonzero(candidate).flatten()
    bands = _row_bands(ids, x_lo[ids], x_hi[ids], y_lo[ids], y_hi[ids], max_pairs)
    table = _FaceTable(face_verts, perspective_correct)
    x_ndc = pixel_centres_ndc(width, height, face_verts.dtype, device)
    y_ndc = pixel_centres_ndc(height, width, face_verts.dtype, device)
    keys = torch.full((num_meshes * height * width,), _EMPTY_KEY, dtype=torch.int64, device=device)
    for start, end in _chunk_bounds(bands[2] * bands[4], max_pairs):
        face, xi, yi = _band_pixels(*(b[start:end] for b in bands))
        px, py = x_ndc[xi], y_ndc[yi]
        hit = torch.nonzero(table.inside(face, px, py)).flatten()
        face, px, py = face[hit], px[hit], py[hit]
        pixel = (face_to_mesh[face] * height + yi[hit]) * width + xi[hit]
        keys.scatter_reduce_(0, pixel, _packed_keys(table.depth(face, px, py), face), reduce="amin")
    pix_to_face = torch.where(keys == _EMPTY_KEY, -1, keys & 0xFFFFFFFF)
    return pix_to_face.view(num_meshes, height, width)


def _barycentrics(px, py, v):
    """Screen-space barycentrics as PyTorch3D computes them. px, py: (P,); v: (P, 3, 3). Returns (P, 3)."""
    x, y = v[..., 0], v[..., 1]
    area = _edge(x[:, 2], y[:, 2], x[:, 0], y[:, 0], x[:, 1], y[:, 1]) + K_EPSILON
    edges = [_edge(px, py, x[:, a], y[:, a], x[:, b], y[:, b]) for a, b in ((1, 2), (2, 0), (0, 1))]
    return torch.stack(edges, dim=1) / area[:, None]


def _perspective_correct(bary, z):
    """World-space barycentrics from screen-space ones. bary, z: (P, 3). Returns (P, 3)."""
    top = bary * z[:, [1, 0, 0]] * z[:, [2, 2, 1]]
    return top / top.sum(dim=1, keepdim=True).clamp(min=K_EPSILON)


def _squared_edge_distance(px, py, v):
    """(P,) squared distance from (px, py) to the nearest edge of each triangle v (P, 3, 3), in NDC."""
    p = torch.stack([px, py], dim=1)  # (P, 2)
    start, end = v[:, :, :2], v[:, [1, 2, 0], :2]  # (P, 3, 2)
    direction = end - start
    length2 = (direction * direction).sum(-1)
    t = ((p[:, None] - start) * direction).sum(-1) / length2.clamp(min=K_EPSILON)
    t = torch.where(length2 > K_EPSILON, t.clamp(0, 1), torch.ones_like(t))
    offset = p[:, None] - (start + t[..., None] * direction)
    return (offset * offset).sum(-1).min(dim=1).values


def fragments_for_faces(face_verts, pix_to_face, image_size, perspective_correct):
    """Differentiable bary_coords, zbuf and dists for the chosen faces, as PyTorch3D ``Fragments``.

    face_verts: (F, 3, 3) packed NDC x, y, view z (with autograd); pix_to_face: (N, H, W) int64.
    """
    height, width = image_size
    num_pixels = pix_to_face.numel()
    flat = pix_to_face.reshape(-1)
    covered = torch.nonzero(flat >= 0).flatten()
    face = flat[covered]
    xi, yi = covered % width, torch.div(covered, width, rounding_mode="floor") % height
    px = pixel_centres_ndc(width, height, face_verts.dtype, face_verts.device)[xi]
    py = pixel_centres_ndc(height, width, face_verts.dtype, face_verts.device)[yi]
    v = face_verts[face]  # (P, 3, 3)
    bary = _barycentrics(px, py, v)
    if perspective_correct:
        bary = _perspective_correct(bary, v[..., 2])
    zbuf = (bary * v[..., 2]).sum(dim=1)
    dists = -_squared_edge_distance(px, py, v)

    def scatter(values, channels):
        """Covered pixels' values (P, channels) into a (N, H, W, 1, channels) tensor filled with -1."""
        out = values.new_full((num_pixels, channels), -1.0)
        return out.index_put((covered,), values.reshape(-1, channels)).view(*pix_to_face.shape, 1, channels)

    return Fragments(pix_to_face=pix_to_face.unsqueeze(-1), zbuf=scatter(zbuf, 1).squeeze(-1),
                     bary_coords=scatter(bary, 3), dists=scatter(dists, 1).squeeze(-1))
