"""The head's surface from a photo's person mask and MediaPipe face points: a closed two-sheet mesh.

All geometry here is in photo pixels: (x, y) as in the photo, z toward the viewer.

1. ``head_region``: the person mask cut under the chin and narrowed to the neck, holes filled;
2. ``grid_sheet``: a regular triangle grid over it (the front sheet), its outline vertices (smoothed);
   ``flat_bottom``: the outline's straight bottom edge where the neck or bust was cut, if any;
3. ``inflation``: the outline inflated into a round body (a hemisphere for a disc);
   ``front_depth``: the face's MediaPipe depth inside the face outline (but for a band along it), and a
   biharmonic correction that continues it smoothly over that band and the inflated body out to the outline
   (where it vanishes);
4. ``close_head``: a back sheet (the inflated silhouette, deeper than the front) sharing the outline
   vertices with the front sheet (a flat cap joins them along a cut bottom), so the mesh is closed;
   ``follow_face_direction`` turns it to the face's direction.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg
from matplotlib.path import Path as PolygonPath
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import cKDTree

from utils.geometry.fill import edge_weights
from utils.geometry.smoothing import border_edges
from utils.errors import InputError

import torch

if TYPE_CHECKING:
    from utils.acquisition.face import Face

GRID_JITTER = 0.1  # grid steps
FACE_MESH_POINTS = 468  # MediaPipe's face surface; the refined points after them are the irises


@dataclass
class HeadShape:
    """Proportions of the modelled head; face heights are forehead-to-chin distances, face widths MediaPipe's.

    The depths scale the inflated silhouette (``inflation``: a hemisphere for a disc). They were chosen on the
    eight RRPS heads (bench/bench_acquire.py): with the earlier 0.9 / 1.25 the outline sat a whole face depth
    behind the nose, where Deep3dPortrait's heads have it about half as far, and at 30 degrees the silhouette
    overlap was 0.65; with 0.4 / 0.8 it is 0.86-0.92 (a deeper back lowers it: 0.845 at +30 degrees with 1.1),
    and the head stays closed and round from the side, if shallower than a real one.
    """

    neck_length: float = 0.45  # face heights: how far below the chin the neck (or bust) is cut
    neck_width: float = 2.2  # face widths: below the jaw the mask is narrowed to this band (hair, neck, collar)
    back_depth: float = 0.8  # the back sheet's depth over the inflated silhouette's (1: a sphere behind a disc)
    front_depth: float = 0.4  # the front sheet's depth over the inflated silhouette's, away from the face
    outline_blur: float = 0.03  # face heights: smoothing of the person mask's outline
    mask_threshold: float = 0.5  # the person mask's level taken as the outline
    face_join: float = 0.03  # face heights: a band inside the face's outline where its depth blends into the body's
    # MediaPipe's face turns steeply away there, and kept up to the outline it made fins one grid row apart
    # (the grid's staircase; seen at -20 and -40 degrees on every acquired head), and the depth's fill beyond the
    # face rippled with them (bench_acquire, 8 RRPS heads: folds over 60 degrees on 1.12% of the front's edges;
    # 0.02 / 0.03 / 0.06: 0.24 / 0.19 / 0.16%, the face's distance to the known surface 0.028 -> 0.034 / 0.038 / 0.048)


def head_region(mask: np.ndarray, face: "Face", shape: HeadShape) -> np.ndarray:
    """(H, W) bool: the person mask (``person_mask``) around ``face`` cut to a head and neck.

    Below the chin only a neck-wide band about the face's axis is kept, down to ``neck_length`` face
    heights; the face's own outline is always inside; holes are filled and only the part joined to
    the face is kept. Raises ``InputError`` when nothing is left.
    """
    height, width = mask.shape
    face_height = face.height()
    points = face.points[:, :2]
    blur = max(1.0, shape.outline_blur * face_height)
    region = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), blur) > shape.mask_threshold
    face_outline = np.zeros_like(region, dtype=np.uint8)
    cv2.fillPoly(face_outline, [np.round(points[face.oval]).astype(np.int32)], 1)
    region |= face_outline.astype(bool)
    rows, cols = np.mgrid[0:height, 0:width]
    axis_x = float(points[:, 0].mean())
    face_width = float(np.ptp(points[:, 0]))
    jaw_y = float(points[face.oval, 1].max()) - 0.25 * face_height
    neck = (rows > jaw_y) & (np.abs(cols - axis_x) > shape.neck_width * face_width / 2) & ~face_outline.astype(bool)
    region &= ~neck & (rows <= points[:, 1].max() + shape.neck_length * face_height)
    region = scipy.ndimage.binary_fill_holes(region)
    labels, _ = scipy.ndimage.label(region)
    centre = np.round(points.mean(0)).astype(int)
    keep = labels[np.clip(centre[1], 0, height - 1), np.clip(centre[0], 0, width - 1)]
    if keep == 0:
        raise InputError("the person mask does not cover the face; use a photo with a plain background")
    return labels == keep


def grid_sheet(region: np.ndarray, target_vertices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A regular triangle grid over a (H, W) bool region.

    Returns (pixels (V, 2) float64 (x, y), faces (F, 3) int64 wound counter-clockwise seen from +z with
    y up, rim (V,) bool: the vertices on the sheet's outline). Triangles need all three corners inside;
    only the largest connected piece is kept.
    """
    step = float(np.sqrt(region.sum() / target_vertices))
    height, width = region.shape
    xs, ys = np.arange(0.0, width - 1, step), np.arange(0.0, height - 1, step)
    gx, gy = np.meshgrid(xs, ys)
    pixels = np.stack([gx.ravel(), gy.ravel()], axis=1)
    # a fixed small jitter: on an exact lattice, edges met pixel centres exactly in frontal renders and the CPU
    # rasterizer's strict edge test left them to neither triangle (dotted lines of background across the face)
    pixels += np.random.default_rng(0).uniform(-GRID_JITTER, GRID_JITTER, pixels.shape) * step
    inside = scipy.ndimage.map_coordinates(region.astype(np.float32), [pixels[:, 1], pixels[:, 0]], order=1) > 0.5
    cols = len(xs)
    corner = (np.arange(len(ys) - 1)[:, None] * cols + np.arange(cols - 1)[None, :]).ravel()
    quads = np.stack([corner, corner + cols, corner + cols + 1, corner + 1], axis=1)
    flip = ((corner // cols) % 2 == 1)[:, None]  # diagonals alternate from row to row (no long straight edges)
    first = np.where(flip, quads[:, [0, 1, 3]], quads[:, [0, 1, 2]])
    second = np.where(flip, quads[:, [1, 2, 3]], quads[:, [0, 2, 3]])
    faces = np.concatenate([first, second])
    faces = _largest_piece(faces[inside[faces].all(axis=1)], len(pixels))
    used = np.unique(faces)
    new_index = np.full(len(pixels), -1, dtype=np.int64)
    new_index[used] = np.arange(len(used))
    pixels, faces = _split_chords(pixels[used], new_index[faces])
    rim = _outline_vertices(faces, len(pixels))
    return smooth_outline(pixels, faces, rim), faces, rim


def inflation(pixels: np.ndarray, faces: np.ndarray, cut: np.ndarray | None = None,
              samples_per_edge: int = 4) -> np.ndarray:
    """(V,) height of the sheet's outline inflated into a round body at pixels (V, 2): sqrt(d (2 D - d)).

    d: distance to the sheet's outline (its rim edges, finely sampled), D: its largest value (a disc becomes
    a hemisphere); 0 on the outline. Measured from the mesh's own outline rather than the pixel mask, so the
    steep band next to the rim has no ridges from the grid's staircase. Outline edges between two ``cut``
    vertices ((V,) bool, ``flat_bottom``) are not an outline of the body: the body goes on through them.
    """
    edges, on_border = border_edges(faces)
    outline = np.sort(edges[on_border], axis=1)  # sampled from their lower vertex index (as chosen when measured)
    if cut is not None:
        outline = outline[~(cut[outline[:, 0]] & cut[outline[:, 1]])]
    d = distance_to_segments(pixels[outline[:, 0]], pixels[outline[:, 1]], pixels, samples_per_edge)
    d_max = float(d.max())
    return np.sqrt(np.clip(d * (2 * d_max - d), 0.0, None))


def flat_bottom(pixels: np.ndarray, faces: np.ndarray, rim: np.ndarray, min_width: float) -> np.ndarray:
    """(V,) bool: the rim vertices of the sheet's straight bottom edge, where the neck or bust was cut (or the
    photo ends), when that edge is at least ``min_width`` pixels wide; all False otherwise.

    The body is closed there by a flat cap (``close_head``) instead of tapering to a thin edge.
    """
    step = float(np.median(np.linalg.norm(pixels[faces[:, 0]] - pixels[faces[:, 1]], axis=1)))
    bottom = rim & (pixels[:, 1] > pixels[rim, 1].max() - 0.5 * step)
    if not bottom.any() or np.ptp(pixels[bottom, 0]) < min_width:
        return np.zeros(len(pixels), dtype=bool)
    return bottom


def smooth_outline(pixels: np.ndarray, faces: np.ndarray, rim: np.ndarray, rounds: int = 4) -> np.ndarray:
    """(V, 2) pixels with the rim vertices moved toward the mean of their outline neighbours (a smooth outline).

    Each round moves a rim vertex halfway to the mean of the rim vertices it shares an outline edge with.
    """
    edges, on_border = border_edges(faces)
    outline = edges[on_border]
    smoothed = pixels.copy()
    degree = np.bincount(outline.ravel(), minlength=len(pixels)).astype(np.float64)[:, None]
    for _ in range(rounds):
        total = np.zeros_like(smoothed)
        np.add.at(total, outline[:, 0], smoothed[outline[:, 1]])
        np.add.at(total, outline[:, 1], smoothed[outline[:, 0]])
        mean = total / np.maximum(degree, 1)
        smoothed[rim] = 0.5 * smoothed[rim] + 0.5 * mean[rim]
    return smoothed


def face_interior(face: "Face", pixels: np.ndarray) -> np.ndarray:
    """(V,) bool: the pixels (V, 2) inside the face's outline (MediaPipe's face oval)."""
    return PolygonPath(face.points[face.oval, :2]).contains_points(pixels)


def front_depth(face: "Face", pixels: np.ndarray, faces: np.ndarray, rim: np.ndarray,
                base: np.ndarray, join: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(V,) depth of the front sheet: the face's MediaPipe depth inside its outline, ``base`` elsewhere.

    base: (V,) the inflated silhouette's front; join: pixels, the band inside the face's outline whose depth is
    not kept. The face is shifted in depth so its outline sits on the base on average; the difference between
    the face and the base is then continued biharmonically over the band and the rest of the sheet (smooth
    across the face's outline) down to zero at the rim. Returns (depth (V,), inside (V,) bool: the vertices
    inside the face).
    """
    inside = face_interior(face, pixels)
    # piecewise linear: a smooth (Clough-Tocher) interpolant overshot by 3 face depths on MediaPipe's nearly
    # coincident lip and eyelid points (measured on RRPS 00319); the iris points (468-477) are left out
    mesh_points = face.points[:FACE_MESH_POINTS]
    interpolate = LinearNDInterpolator(mesh_points[:, :2], mesh_points[:, 2])
    face_depth = interpolate(pixels[inside])
    valid = np.isfinite(face_depth)
    inside[np.flatnonzero(inside)[~valid]] = False
    face_depth = face_depth[valid]
    oval = face.points[face.oval, :2]
    offset = float(np.median(_sample_nearest(pixels, base, oval) - face.points[face.oval, 2]))
    kept = inside & (distance_to_segments(oval, np.roll(oval, -1, axis=0), pixels) > join)
    residual = np.zeros(len(pixels))
    residual[inside] = face_depth + offset - base[inside]
    residual = biharmonic_fill(residual, kept | rim, faces)
    return base + residual, inside


def distance_to_segments(starts: np.ndarray, ends: np.ndarray, points: np.ndarray,
                         samples_per_side: int = 8) -> np.ndarray:
    """(N,) distance of points (N, 2) to the segments starts (S, 2) -> ends (S, 2), each finely sampled."""
    steps = np.linspace(0.0, 1.0, samples_per_side, endpoint=False)[:, None, None]
    return cKDTree((starts + steps * (ends - starts)).reshape(-1, 2)).query(points)[0]


def biharmonic_fill(values: np.ndarray, known: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,) values: the known ones kept, the others minimising the squared graph Laplacian (smooth, C1-like).

    values: (V,); known: (V,) bool; faces: (F, 3). Solves (L^2)_uu x_u = -(L^2)_uk x_k with L the
    uniform graph Laplacian of the mesh.
    """
    weights = edge_weights(torch.from_numpy(faces), torch.zeros(len(values), 3))
    laplacian = (scipy.sparse.diags(np.asarray(weights.sum(1)).ravel()) - weights).tocsr()
    squared = (laplacian.T @ laplacian).tocsr()
    unknown = ~known
    filled = values.astype(np.float64).copy()
    if unknown.any():
        system = squared[unknown][:, unknown].tocsc()
        rhs = -(squared[unknown][:, known] @ filled[known])
        filled[unknown] = scipy.sparse.linalg.splu(system).solve(rhs)
    return filled


def close_head(pixels: np.ndarray, faces: np.ndarray, rim: np.ndarray, front: np.ndarray, back: np.ndarray,
               cut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Glue a front sheet and a back sheet along the rim into one closed mesh.

    pixels: (V, 2); faces: (F, 3) the front sheet's; rim: (V,) bool; front, back: (V,) depths (equal on the
    rim but along ``cut``); cut: (V,) bool rim vertices of a straight bottom edge (``flat_bottom``), where the
    two sheets are joined by a flat cap instead. Returns (points (V + B, 3) pixel x, y and depth, faces wound
    outward, is_back (V + B,) bool, back_of (B,) the front vertex each back vertex lies behind), where B counts
    the vertices the back sheet does not share with the front (all but the rim's, and the cut's but its ends).
    """
    cut = np.zeros(len(pixels), dtype=bool) if cut is None else cut
    edges, on_border = border_edges(faces)  # each front edge as its face walks it
    outline = edges[on_border]
    ends = np.zeros(len(pixels), dtype=bool)  # cut vertices with an outline neighbour off the cut: shared corners
    across = cut[outline[:, 0]] != cut[outline[:, 1]]
    ends[outline[across].ravel()] = True
    back_of = np.flatnonzero(~rim | (cut & ~ends))
    back_index = np.arange(len(pixels))
    back_index[back_of] = len(pixels) + np.arange(len(back_of))
    points = np.concatenate([np.column_stack([pixels, front]), np.column_stack([pixels[back_of], back[back_of]])])
    back_faces = back_index[faces][:, ::-1]  # reversed: the back sheet faces away from the viewer
    along = outline[cut[outline[:, 0]] & cut[outline[:, 1]]]
    a, b = along[:, 0], along[:, 1]
    cap = np.concatenate([np.stack([b, a, back_index[a]], 1), np.stack([b, back_index[a], back_index[b]], 1)])
    cap = cap[(cap[:, 0] != cap[:, 1]) & (cap[:, 1] != cap[:, 2]) & (cap[:, 0] != cap[:, 2])]
    is_back = np.arange(len(points)) >= len(pixels)
    return points, np.concatenate([faces, back_faces, cap]), is_back, back_of


def follow_face_direction(points: np.ndarray, is_back: np.ndarray, normal: np.ndarray,
                          max_turn: float = 30.0) -> np.ndarray:
    """(V, 3) points with the back sheet sheared so that the head extends behind the face along the face's own
    direction, not straight away from the camera (a face turned from the camera has its head turned too).

    points: (V, 3) pixel x, y and depth (0 on the outline, negative behind); is_back: (V,) bool; normal: (3,) the
    face's symmetry-plane normal (``colors.symmetry_plane``); the turn is capped at ``max_turn`` degrees. On the
    RRPS renders (faces turned 2-14 degrees) it raised the silhouette overlap at +30 degrees by 0.006.
    """
    slope = float(np.clip(normal[2] / normal[0], -np.tan(np.radians(max_turn)), np.tan(np.radians(max_turn))))
    points = points.copy()
    points[is_back, 0] += slope * points[is_back, 2]
    return points


def _largest_piece(faces, num_verts):
    """The faces (F, 3) of the largest edge-connected piece."""
    if len(faces) == 0:
        raise InputError("the head region is empty; use a larger photo of one person")
    adjacency = edge_weights(torch.from_numpy(faces), torch.zeros(num_verts, 3))
    _, labels = scipy.sparse.csgraph.connected_components(adjacency, directed=False)
    face_labels = labels[faces[:, 0]]
    return faces[face_labels == np.bincount(face_labels).argmax()]


def _split_chords(pixels, faces, rounds=10):
    """Split every chord (an inner edge whose two ends lie on the outline) at its midpoint.

    The back sheet shares the outline's vertices, so a chord would be used by four faces of the closed
    head. pixels: (V, 2); faces: (F, 3). Returns (pixels (V + C, 2), faces (F + 2 C, 3)), orientation kept;
    each round splits a set of chords no two of which share a triangle.
    """
    for _ in range(rounds):
        directed, on_border = border_edges(faces)
        rim = _outline_vertices(faces, len(pixels))
        edges = np.sort(directed, axis=1).reshape(3, -1, 2).transpose(1, 0, 2)  # (F, 3, 2): edges 01, 12, 20
        inner = ~on_border.reshape(3, -1).T
        chord = inner & rim[edges[..., 0]] & rim[edges[..., 1]]
        if not chord.any():
            return pixels, faces
        owners = {}
        for face, corner in zip(*np.nonzero(chord)):
            owners.setdefault(tuple(edges[face, corner]), []).append((face, corner))
        busy, new_faces, new_pixels, drop = set(), [], [], []
        for (a, b), sides in owners.items():
            if any(face in busy for face, _ in sides):
                continue
            middle = len(pixels) + len(new_pixels)
            new_pixels.append((pixels[a] + pixels[b]) / 2)
            for face, corner in sides:
                busy.add(face)
                drop.append(face)
                u, v, w = np.roll(faces[face], -corner)  # the chord is (u, v), w the opposite corner
                new_faces += [(u, middle, w), (middle, v, w)]
        keep = np.ones(len(faces), dtype=bool)
        keep[drop] = False
        pixels = np.concatenate([pixels, np.array(new_pixels)])
        faces = np.concatenate([faces[keep], np.array(new_faces, dtype=np.int64)])
    raise InputError("the head region's outline is too ragged to close; use a photo with a plain background")


def _outline_vertices(faces, num_verts):
    """(V,) bool: vertices on an edge used by one face only."""
    edges, on_border = border_edges(faces)
    rim = np.zeros(num_verts, dtype=bool)
    rim[edges[on_border].ravel()] = True
    return rim


def _sample_nearest(pixels, values, queries):
    """(Q,) values (V,) of the pixels (V, 2) nearest to each query (Q, 2)."""
    return values[cKDTree(pixels).query(queries)[1]]
