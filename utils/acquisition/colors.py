"""Vertex colours of an acquired head: projected from the photo where it sees the surface, filled elsewhere.

A vertex is seen when it lies on the front sheet and its normal faces the camera (the photo is a
frontal view); grazing surfaces are treated as unseen, since the photo stretches a few pixels over
them. They take a harmonic fill over the mesh from the known colours: the seen vertices' (blurred), and
for an unseen vertex whose mirror image across the face's symmetry plane is seen, that one's. (Showing the
mirrored colours themselves drew bright horizontal streaks over the cheeks at +-60 degrees, where only
scattered rows of vertices found a mirror image.) The back of the
head is blended in from its outline toward other colours: above the jaw the hair (or hat) at the top
of the head in the same column, falling down the back as hair does; lower the fill from the known
colours outside the face (neck, collar, long hair) alone. The back is then not a skin-coloured hood.
"""
import cv2
import numpy as np
import torch
from scipy.spatial import cKDTree

from utils.acquisition.face import SYMMETRIC_PAIRS
from utils.geometry.fill import edge_weights, harmonic_fill


def sample_image(image: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Bilinear RGB colours (N, 3) float32 in [0, 1] of a uint8 image (H, W, 3) at pixels (N, 2) (x, y)."""
    maps = pixels.astype(np.float32).reshape(1, -1, 2)
    colors = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return colors.reshape(-1, 3).astype(np.float32) / 255.0


def extend_beyond(image: np.ndarray, region: np.ndarray, band: int) -> np.ndarray:
    """The photo with the colours inside ``region`` (H, W) bool spread ``band`` pixels past its outline.

    Sampling near the outline then never picks up the background. Pixels of the region closer than
    ``band / 2`` to its outline are replaced too (segmentation edges are soft).
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    core = cv2.erode(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (band + 1, band + 1)))
    ring = cv2.dilate(region.astype(np.uint8), kernel) & (1 - core)
    return cv2.inpaint(image, ring, 3, cv2.INPAINT_TELEA)


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a mesh (points (V, 3), faces (F, 3))."""
    corners = points[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(points)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def symmetry_plane(face_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre (3,), unit normal (3,)) of the face's left-right symmetry plane from MediaPipe points (478, 3)."""
    right, left = (face_points[[pair[k] for pair in SYMMETRIC_PAIRS]] for k in (0, 1))
    normal = (left - right).mean(0)
    return (left + right).mean(0) / 2, normal / np.linalg.norm(normal)


def blur_within(image: np.ndarray, region: np.ndarray, blur: float) -> np.ndarray:
    """uint8 (H, W, 3) ``image`` blurred by ``blur`` pixels (Gaussian sigma) using only the pixels of ``region``
    (H, W) bool: near the head's outline a plain blur mixes in the background (a grey or pink cast on the fill)."""
    weight = cv2.GaussianBlur(region.astype(np.float32), (0, 0), blur)[..., None]
    inside = cv2.GaussianBlur(image.astype(np.float32) * region[..., None], (0, 0), blur)
    return np.clip(inside / np.maximum(weight, 1e-6) + 0.5, 0, 255).astype(np.uint8)


def hair_above(blurred: np.ndarray, region: np.ndarray, points: np.ndarray, inset: float) -> np.ndarray:
    """(V, 3) float32 colours of ``blurred`` (uint8 (H, W, 3), ``blur_within``'s) at the top of ``region`` (H, W)
    bool in each vertex's column, ``inset`` pixels inside it: the hair or hat above the vertex. points: (V, 3)
    pixel x, y, depth."""
    top = np.argmax(region, axis=0).astype(np.float64)  # the first row inside, per column (0 where none)
    columns = np.clip(np.round(points[:, 0]).astype(int), 0, region.shape[1] - 1)
    rows = np.minimum(top[columns] + inset, points[:, 1])
    return sample_image(blurred, np.column_stack([points[:, 0], rows]))


def head_colors(image: np.ndarray, blurred: np.ndarray, points: np.ndarray, faces: np.ndarray, is_back: np.ndarray,
                face_points: np.ndarray, on_face: np.ndarray, back_share: np.ndarray,
                back_colors: tuple[np.ndarray, np.ndarray], facing: tuple[float, float] = (0.25, 0.65),
                mirror_tolerance: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float32 colours in [0, 1] of a head mesh built in photo pixels, and (V,) bool: taken from the photo.

    image: uint8 (H, W, 3) RGB (best after ``extend_beyond``); blurred: it blurred within the head (``blur_within``),
    the colours the harmonic fill spreads (a fill from sharp colours draws streaks along the mesh from every detail
    on its border); points: (V, 3) pixel x, y and depth toward the viewer; faces: (F, 3) wound outward; is_back:
    (V,) bool; face_points: MediaPipe's (478, 3); on_face: (V,) bool, the front vertices inside
    the face's outline; back_share: (V,) in [0, 1], how much of a vertex's fill comes from outside the face only
    (0 on the front, rising from the outline to 1 over the back); back_colors: ((V, 3) float32 colours, (V,)
    their share of the back's fill against the fill from outside the face), e.g. ``hair_above``'s above the jaw.
    facing: (low, high) normal components toward the camera: at or above high a vertex counts as seen (its
    photo colour is kept and feeds the fill), at or below low it takes the fill, and in between a blend of both
    (a hard threshold draws a jagged seam where the surface turns away);
    mirror_tolerance: how far (pixels) a mirror image may lie from the seen vertex whose colour it feeds the fill.
    """
    normals = vertex_normals(points * np.array([1.0, -1.0, 1.0]), faces)  # y up, so the winding reads outward
    toward = np.where(is_back, -1.0, normals[:, 2])
    front = toward > facing[0]
    sharp, smooth = (np.zeros((len(points), 3), dtype=np.float32) for _ in range(2))
    sharp[front], smooth[front] = sample_image(image, points[front, :2]), sample_image(blurred, points[front, :2])
    seen = toward >= facing[1]
    mirror, source = mirror_sources(points, seen, face_points, mirror_tolerance)
    keep = toward[mirror] <= facing[0]  # only where the photo has nothing: a mirrored cheek beside a seen one shows
    mirror, source = mirror[keep], source[keep]
    smooth[mirror] = smooth[source]  # a source for the fill only (see the module docstring)
    known = seen.copy()
    known[mirror] = True
    weights = edge_weights(torch.from_numpy(faces), torch.zeros(len(points), 3))
    filled = harmonic_fill(torch.from_numpy(smooth), torch.from_numpy(known), weights, default=0.5).numpy()
    if (back_share > 0).any() and (known & ~on_face).any():
        around = harmonic_fill(torch.from_numpy(smooth), torch.from_numpy(known & ~on_face), weights, 0.5).numpy()
        wrap, wrap_share = back_colors[0], back_colors[1][:, None]
        back = wrap_share * wrap + (1 - wrap_share) * around
        filled = back_share[:, None] * back + (1 - back_share[:, None]) * filled
    share = np.clip((toward - facing[0]) / (facing[1] - facing[0]), 0.0, 1.0)[:, None]
    return (share * sharp + (1 - share) * filled).astype(np.float32), known


def mirror_sources(points: np.ndarray, seen: np.ndarray, face_points: np.ndarray,
                   tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Unseen vertices whose mirror image across the face's symmetry plane lands on a seen one.

    Returns (mirror (M,) int64 indices of those unseen vertices, source (M,) int64 the seen vertices).
    """
    centre, normal = symmetry_plane(face_points)
    unseen, seen_index = np.flatnonzero(~seen), np.flatnonzero(seen)
    mirrored = points[unseen] - 2 * ((points[unseen] - centre) @ normal)[:, None] * normal
    distance, nearest = cKDTree(points[seen_index]).query(mirrored)
    close = distance <= tolerance
    return unseen[close], seen_index[nearest[close]]
