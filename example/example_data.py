"""The example data the project makes itself from public-domain photos that ship inside packages.

* A portrait relief mesh from matplotlib's Grace Hopper photo: dlib's 68 landmarks on the
  photo, a smooth head-shaped depth fitted to them (an elliptical dome plus Gaussian bumps and
  dips for the nose, brows, eye sockets, cheeks, lips and chin), a grid mesh coloured from
  the photo and cropped to the head.
* Style exemplars from scikit-image's astronaut photo: a square face crop, a caricature warp of
  its landmarks (thin-plate spline, image border fixed) and non-photorealistic OpenCV filters.

Pixel convention: (x, y), origin at the top-left pixel centre. Images are uint8 (H, W, 3) RGB
arrays here (the photos' own type); nothing is downloaded.
"""
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from models.landmark_detector import hog_boxes, predict
from utils.errors import InputError
from utils.geometry.smoothing import border_edges
from utils.io.mesh import Mesh
from utils.style.warp import border_points

# dlib 68-point index ranges (iBUG 300-W order; "right" is the subject's right, the image's left)
JAW = slice(0, 17)
BROWS, RIGHT_BROW, LEFT_BROW = slice(17, 27), slice(17, 22), slice(22, 27)
NOSE, NOSE_BRIDGE = slice(27, 36), slice(27, 31)
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)
MOUTH = slice(48, 68)
EXAMPLE_BORDER_POINTS = 8  # fixed points per image edge in the caricature warp


def sample_photo(name):
    """A public-domain photo shipped by a package, as a uint8 (H, W, 3) RGB array.

    name: "hopper" (matplotlib's grace_hopper.jpg, 600x512) or "astronaut" (scikit-image, 512x512).
    """
    if name == "hopper":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
            return np.asarray(photo.convert("RGB"))
    if name == "astronaut":
        import skimage.data

        return np.ascontiguousarray(skimage.data.astronaut()[:, :, :3])
    raise ValueError(f"unknown sample photo '{name}'; use 'hopper' or 'astronaut'")


def frontal_face_landmarks(image):
    """dlib's 68 landmarks of the most confident HOG detection in a uint8 (H, W, 3) RGB photo.

    A plain single detection (the builder's photos are frontal): the pipeline's detector
    (models.landmark_detector) adds retries and a box ensemble for renders and artworks.
    Returns a (68, 2) float64 array of pixel (x, y), or None when no face is found.
    """
    image = np.ascontiguousarray(image)
    scored = hog_boxes(image, 0.0)
    if not scored:
        return None
    best_box, _ = max(scored, key=lambda item: item[1])
    return predict(image, best_box)


def require_landmarks(image, what):
    """``frontal_face_landmarks`` that raises ``InputError`` naming ``what`` when no face is found."""
    landmarks = frontal_face_landmarks(image)
    if landmarks is None:
        raise InputError(f"{what}: dlib found no face; use a frontal portrait")
    return landmarks


# ----------------------------------------------------------------------------- relief mesh


@dataclass
class HeadEllipse:
    """The head outline in the photo: an ellipse (pixels) and the cut under the chin.

    centre: (2,) pixel (x, y); axes: (2,) semi-axes (horizontal, vertical); bottom: y of the cut.
    """

    centre: np.ndarray
    axes: np.ndarray
    bottom: float


def fit_head_ellipse(landmarks, width_factor=1.25, forehead_factor=0.85, chin_margin=0.06):
    """The head ellipse around a face's landmarks (68, 2).

    Horizontally it spans the jaw width times ``width_factor`` (hair at the sides); vertically
    from ``forehead_factor`` brow-to-chin heights above the brows down to below the chin, where
    it is cut ``chin_margin`` face heights under the chin point.
    """
    jaw = landmarks[JAW]
    brow_y = float(landmarks[BROWS, 1].mean())
    chin_y = float(landmarks[8, 1])
    face_height = chin_y - brow_y
    top = brow_y - forehead_factor * face_height
    bottom = chin_y + 0.35 * face_height  # the dome's lower end, below the cut
    centre = np.array([float(jaw[:, 0].min() + jaw[:, 0].max()) / 2, (top + bottom) / 2])
    axes = np.array([width_factor * float(jaw[:, 0].max() - jaw[:, 0].min()) / 2, (bottom - top) / 2])
    return HeadEllipse(centre, axes, chin_y + chin_margin * face_height)


def grid_in_head(head, target_vertices):
    """A regular triangle grid over the head region.

    Returns (pixels (V, 2) float64 vertex positions (x, y) in the photo, faces (F, 3) int64,
    counter-clockwise seen from the viewer). Only triangles whose three corners lie inside the
    ellipse and above the cut are kept; the boundary vertices are then snapped onto the outline.
    """
    inside_area = np.pi * head.axes[0] * head.axes[1] * 0.85
    step = float(np.sqrt(inside_area / target_vertices))
    xs = np.arange(head.centre[0] - head.axes[0], head.centre[0] + head.axes[0] + step, step)
    ys = np.arange(head.centre[1] - head.axes[1], head.bottom + step, step)
    gx, gy = np.meshgrid(xs, ys)
    pixels = np.stack([gx.ravel(), gy.ravel()], axis=1)
    inside = (_elliptic_radius(pixels, head) <= 1.0) & (pixels[:, 1] <= head.bottom + 1e-9)
    rows, cols = len(ys), len(xs)
    corner = (np.arange(rows - 1)[:, None] * cols + np.arange(cols - 1)[None, :]).ravel()
    quads = np.stack([corner, corner + cols, corner + cols + 1, corner + 1], axis=1)  # counter-clockwise, y up
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    faces = faces[inside[faces].all(axis=1)]
    used = np.unique(faces)
    new_index = np.full(len(pixels), -1, dtype=np.int64)
    new_index[used] = np.arange(len(used))
    pixels, faces = pixels[used], new_index[faces]
    return snap_rim(pixels, faces, head), faces


def snap_rim(pixels, faces, head):
    """Move the grid's boundary vertices onto the head outline so the rim is smooth, not a staircase.

    pixels: (V, 2); faces: (F, 3). Vertices on the bottom row go to the cut under the chin, the
    other boundary vertices radially onto the ellipse. Returns the new (V, 2) pixels.
    """
    edges, on_border = border_edges(faces)
    rim = np.unique(edges[on_border])
    snapped = pixels.copy()
    on_cut = pixels[rim, 1] >= pixels[:, 1].max() - 1e-9
    radius = _elliptic_radius(pixels[rim], head)[:, None]
    snapped[rim] = np.where(on_cut[:, None], pixels[rim], head.centre + (pixels[rim] - head.centre) / radius)
    snapped[rim[on_cut], 1] = head.bottom
    return snapped


def face_depth(pixels, landmarks, head, dome_depth=0.95, dome_power=0.3):
    """Height (toward the viewer, in pixels) of a head-shaped relief at photo pixels (N, 2) -> (N,).

    An elliptical dome ``dome_depth`` half-widths high with a flattened front ((1 - r^2)^power),
    plus smooth features fitted to the 68 landmarks, sized by the inter-ocular distance.
    """
    radius = _elliptic_radius(pixels, head)
    depth = dome_depth * head.axes[0] * np.clip(1.0 - radius ** 2, 0.0, None) ** dome_power
    features = _face_features(pixels, landmarks)
    return depth + features * np.clip((1.0 - radius) * 6.0, 0.0, 1.0)  # features fade out at the rim


def _face_features(pixels, lm):
    """Sum of the facial bumps and dips (N,) in pixels: nose, brows, eyes, cheeks, lips, chin."""
    right_eye, left_eye = lm[RIGHT_EYE].mean(0), lm[LEFT_EYE].mean(0)
    iod = float(np.linalg.norm(left_eye - right_eye))
    mouth_centre = lm[MOUTH].mean(0)
    height = np.zeros(len(pixels))
    # nose: a ridge from the bridge (27) to the tip (30), wings (31, 35) and the base (33)
    height += _ridge(pixels, lm[27], lm[30], 0.14 * iod, 0.42 * iod, 0.13 * iod)
    height += 0.16 * iod * _gaussian(pixels, lm[[31, 35]], 0.11 * iod)
    height += 0.22 * iod * _gaussian(pixels, lm[[33]], 0.10 * iod)
    # brow ridge above each eye, eye sockets below it
    for brow, eye in ((lm[RIGHT_BROW], right_eye), (lm[LEFT_BROW], left_eye)):
        height += _ridge(pixels, brow[0], brow[-1], 0.07 * iod, 0.07 * iod, 0.14 * iod)
        height -= 0.12 * iod * _gaussian(pixels, eye[None], 0.24 * iod)
        height += 0.03 * iod * _gaussian(pixels, eye[None], 0.09 * iod)  # the eyeball
    # cheekbones: between the outer eye corner and the mouth corner
    cheeks = 0.55 * lm[[36, 45]] + 0.45 * lm[[48, 54]]
    height += 0.09 * iod * _gaussian(pixels, cheeks, 0.30 * iod)
    # lips forward, a thin dip along the mouth line
    height += 0.09 * iod * _gaussian(pixels, lm[[51, 57]], 0.14 * iod)
    height += 0.05 * iod * _gaussian(pixels, mouth_centre[None], 0.35 * iod)
    height -= 0.04 * iod * _ridge_profile(pixels, lm[60], lm[64], 0.04 * iod)
    # chin: between the lower lip and the jaw's lowest point
    height += 0.12 * iod * _gaussian(pixels, (0.6 * lm[8] + 0.4 * lm[57])[None], 0.22 * iod)
    return height


def _elliptic_radius(pixels, head):
    """(N,) elliptic radius of pixels (N, 2) in the head ellipse: 1 on its outline."""
    return np.linalg.norm((pixels - head.centre) / head.axes, axis=1)


def _gaussian(pixels, centres, sigma):
    """(N,) sum of isotropic Gaussians of width ``sigma`` at centres (M, 2), each peaking at 1."""
    squared = ((pixels[:, None, :] - centres[None]) ** 2).sum(-1)
    return np.exp(-squared / (2 * sigma ** 2)).sum(1)


def _segment_coordinates(pixels, start, end):
    """(t (N,) in [0, 1] along the segment start->end, distance (N,) to the segment)."""
    direction = end - start
    t = np.clip((pixels - start) @ direction / float(direction @ direction), 0.0, 1.0)
    distance = np.linalg.norm(pixels - (start + t[:, None] * direction), axis=1)
    return t, distance


def _ridge_profile(pixels, start, end, sigma):
    """(N,) Gaussian falloff (peak 1) with the distance to the segment start->end."""
    _, distance = _segment_coordinates(pixels, start, end)
    return np.exp(-distance ** 2 / (2 * sigma ** 2))


def _ridge(pixels, start, end, height_start, height_end, sigma):
    """(N,) a ridge along start->end whose height goes linearly from height_start to height_end."""
    t, distance = _segment_coordinates(pixels, start, end)
    return (height_start + t * (height_end - height_start)) * np.exp(-distance ** 2 / (2 * sigma ** 2))


def sample_colors(image, pixels):
    """Bilinear RGB colours (N, 3) float32 in [0, 1] of a uint8 image (H, W, 3) at pixels (N, 2)."""
    maps = pixels.astype(np.float32).reshape(1, -1, 2)
    colors = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return colors.reshape(-1, 3).astype(np.float32) / 255.0


def relief_mesh(image, landmarks, target_vertices=30000, height=2.0):
    """A coloured head relief from a portrait photo and its 68 landmarks.

    image: uint8 (H, W, 3) RGB; landmarks: (68, 2) pixel (x, y).
    Returns (mesh: ``Mesh`` with y up, the face toward +z, x/y centred on the origin, ``height``
    units tall, the rim at z = 0; landmark_vertices: (68,) int64, the vertex nearest to each landmark).
    """
    head = fit_head_ellipse(landmarks)
    pixels, faces = grid_in_head(head, target_vertices)
    depth = face_depth(pixels, landmarks, head)
    top, bottom = pixels[:, 1].min(), pixels[:, 1].max()
    scale = height / float(bottom - top)
    centre_x = (pixels[:, 0].min() + pixels[:, 0].max()) / 2
    verts = np.stack([(pixels[:, 0] - centre_x) * scale,
                      ((top + bottom) / 2 - pixels[:, 1]) * scale,
                      depth * scale], axis=1)
    mesh = Mesh(verts=torch.tensor(verts, dtype=torch.float32), faces=torch.from_numpy(faces),
                colors=torch.from_numpy(sample_colors(image, pixels)))
    _, landmark_vertices = cKDTree(pixels).query(landmarks)
    return mesh, landmark_vertices.astype(np.int64)


# ----------------------------------------------------------------------------- style exemplars


def square_face_crop(image, landmarks, size=256, face_fraction=0.55, raise_fraction=0.08):
    """Crop a square around the face and resize it to ``size`` pixels.

    The jaw's width fills ``face_fraction`` of the side; the square is centred on the landmarks,
    raised by ``raise_fraction`` of the side (room for the hair). Returns (crop (size, size, 3)
    uint8, landmarks (68, 2) in the crop's pixels).
    """
    jaw_width = float(np.ptp(landmarks[JAW, 0]))
    side = jaw_width / face_fraction
    centre = landmarks.mean(0) - np.array([0.0, raise_fraction * side])
    corner = centre - side / 2
    scale = size / side
    affine = np.array([[scale, 0.0, -scale * corner[0]], [0.0, scale, -scale * corner[1]]])
    crop = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return crop, landmarks @ affine[:, :2].T + affine[:, 2]


def exaggerate_landmarks(landmarks, eyes=1.0, chin=0.0, face_width=1.0, nose=1.0, mouth=1.0):
    """A caricature of a face's 68 landmarks (68, 2): each part scaled about its own centre.

    eyes, nose, mouth: scale factors of those parts (1 keeps them); face_width: horizontal
    scale of the jaw and cheeks about the face's axis; chin: how far the lower jaw moves down,
    as a fraction of the nose-to-chin distance (0 keeps it).
    """
    out = landmarks.astype(np.float64).copy()
    axis_x = float(landmarks[NOSE_BRIDGE, 0].mean())
    out[JAW, 0] = axis_x + face_width * (landmarks[JAW, 0] - axis_x)
    nose_tip_y, chin_y = float(landmarks[33, 1]), float(landmarks[8, 1])
    below_nose = np.clip((landmarks[:, 1] - nose_tip_y) / (chin_y - nose_tip_y), 0.0, 1.0)
    out[:, 1] += chin * (chin_y - nose_tip_y) * below_nose ** 2  # the lower face stretches down
    for part, factor in ((RIGHT_EYE, eyes), (LEFT_EYE, eyes), (NOSE, nose), (MOUTH, mouth)):
        centre = out[part].mean(0)
        out[part] = centre + factor * (out[part] - centre)
    return out


def thin_plate_warp(image, source, target, smoothing=0.0):
    """Warp an image (H, W, 3) so that the points ``source`` (N, 2) move to ``target`` (N, 2).

    A thin-plate spline maps every output pixel back to the input (the border of the image is
    held fixed), then ``cv2.remap`` samples it. Returns the warped image, same shape and dtype.
    """
    height, width = image.shape[:2]
    fixed = border_points(max(height, width), EXAMPLE_BORDER_POINTS).numpy()
    backward = RBFInterpolator(np.concatenate([target, fixed]), np.concatenate([source, fixed]),
                               kernel="thin_plate_spline", smoothing=smoothing)
    gy, gx = np.mgrid[0:height, 0:width]
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    maps = backward(grid).astype(np.float32).reshape(height, width, 2)
    return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def cartoon_filter(image, colors_per_channel=6, edge_strength=0.8):
    """A flat-colour cartoon: edge-preserving smoothing, posterised colours and dark edge lines."""
    smooth = cv2.edgePreservingFilter(image, flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=0.35)
    smooth = cv2.bilateralFilter(smooth, 7, 40, 7)
    step = 256 / colors_per_channel
    poster = np.floor(smooth / step) * step + step / 2
    return (poster * _darken_edges(image, edge_strength)).astype(np.uint8)


def _darken_edges(image, strength, block=9, offset=5):
    """(H, W, 1) float factors: 1 - ``strength`` on dark line-art edges of a uint8 RGB image, 1 elsewhere."""
    gray = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, offset)
    return 1.0 - strength * (edges[..., None] < 128)


def painterly_filter(image, saturation=1.35):
    """A painted look: OpenCV's stylization (watercolour-like) with boosted saturation."""
    painted = cv2.stylization(image, sigma_s=45, sigma_r=0.4)
    hsv = cv2.cvtColor(painted, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def pop_art_filter(image, palette=((40, 30, 90), (200, 40, 100), (245, 140, 50), (255, 225, 140)),
                   edge_strength=0.7):
    """A strong colour stylization: smoothed luminance mapped to a palette (one colour per quantile
    band, so every colour is used), with dark line-art edges."""
    smooth = cv2.edgePreservingFilter(image, flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.4)
    gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY).astype(np.float32)
    thresholds = np.quantile(gray, np.linspace(0, 1, len(palette) + 1)[1:-1])
    colored = np.asarray(palette, dtype=np.float32)[np.searchsorted(thresholds, gray)]
    return (colored * _darken_edges(image, edge_strength, block=11, offset=6)).astype(np.uint8)


STYLE_FILTERS = {"cartoon": cartoon_filter, "painterly": painterly_filter, "pop_art": pop_art_filter}


def make_style(photo, landmarks, filter_name, exaggeration=None, size=256):
    """A style exemplar from a photo: square face crop, optional caricature warp, then a filter.

    photo: uint8 (H, W, 3) RGB; landmarks: (68, 2); filter_name: a key of ``STYLE_FILTERS``;
    exaggeration: keyword arguments of ``exaggerate_landmarks`` or None (no warp).
    Returns (image (size, size, 3) uint8, landmarks (68, 2) pixel (x, y) of the stylized face).
    """
    crop, points = square_face_crop(photo, landmarks, size)
    if exaggeration:
        target = exaggerate_landmarks(points, **exaggeration)
        crop, points = thin_plate_warp(crop, points, target), target
    return STYLE_FILTERS[filter_name](crop), points
