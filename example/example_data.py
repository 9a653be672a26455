"""The example data the project makes itself from public-domain photos that ship inside packages.

* The photos (matplotlib's Grace Hopper, scikit-image's astronaut) and dlib's landmarks on them; the
  example's head mesh is made from the Grace Hopper photo by the acquisition code (make_example.py).
* Style exemplars from scikit-image's astronaut photo: a square face crop, a caricature warp of
  its landmarks (thin-plate spline, image border fixed) and non-photorealistic OpenCV filters.

Pixel convention: (x, y), origin at the top-left pixel centre. Images are uint8 (H, W, 3) RGB
arrays here (the photos' own type); nothing is downloaded.
"""
import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from models.landmark_detector import hog_boxes, predict
from utils.errors import InputError
from utils.style.warp import border_points

# dlib 68-point index ranges (iBUG 300-W order; "right" is the subject's right, the image's left)
JAW = slice(0, 17)
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
