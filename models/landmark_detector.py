"""dlib's 68 face landmarks, made dependable on renders, photos and artistic portraits.

Offline models from ``face_recognition_models``: the 68-point shape predictor,
the HOG face detector and the CNN (mmod) face detector. The pipeline:

1. gather candidate boxes: HOG with a relaxed threshold on the image and on
   preprocessed versions of it (median-smoothed against brush strokes, CLAHE
   contrast, grayscale, slightly rotated, downscaled, padded for faces that
   fill the frame), the CNN on the smoothed one; weaker HOG boxes are
   candidates too, last in trust (some artistic faces have only those); when
   only they exist, a warning says to check the landmarks by eye;
2. pick one without ground truth: boxes much narrower than the widest are
   face parts (a mouth, an eye) and are dropped; of the rest, the one whose
   quick predictions (jittered boxes, image and mirror image) agree best,
   i.e. with the lowest spread about their median (on a wrong box or a
   region without a face the predictor's answers scatter), where a box from
   a more trusted source (HOG on the image itself, then the CNN) wins near-ties;
3. place the landmarks: the predictor on jittered boxes, on the image and its
   mirror image, plain and median-smoothed, upright and slightly rotated about
   the face, combined by the per-coordinate median (a test-time ensemble that
   lowers the predictor's dependence on the exact box and on brush strokes);
   then once more on the box those points imply, where the predictions agree
   at least as well (a box off the face the predictor sees is common on
   three-quarter views);
4. map the points back to the input's pixels (x, y), origin at the top-left
   pixel centre, and move any outside the image onto its border.

The ground-truth landmarks of any data set play no part here.
"""
import contextlib
import functools
import itertools
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from utils.errors import InputError, InputWarning
from utils.io.images import composite_over_white, to_file_pixels, to_uint8_array
from utils.io.landmarks import FORMAT_HINT

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in pixels

DETECTION_MAX_SIDE = 800  # larger images are downscaled for detection and the points scaled back
DETECTION_MIN_SIDE = 256  # smaller images are upsampled
HOG_UPSAMPLE = 1  # the HOG detector's own upsampling (finds faces down to ~40 px)
CANDIDATE_HOG_THRESHOLD = -0.5  # HOG detection threshold for candidate boxes (0 is dlib's default)
LAST_RESORT_HOG_THRESHOLD = -1.0  # weaker HOG boxes: the least trusted candidates (a warning when they are all)
RETRY_ROTATIONS = (15.0, -15.0)  # degrees
RETRY_DOWNSCALE = 0.6
PAD_FRACTION = 0.25  # padded view: border replicated by this fraction of the longer side on every side
MIN_WIDTH_FRACTION = 0.5  # candidates narrower than this fraction of the widest one are dropped
SPREAD_TOLERANCE = 1.25  # a candidate earlier in the order of trust wins unless another's spread is lower by more
UNCERTAIN_SPREAD = 0.08  # above this prediction spread the landmarks come with a warning to check them: on the RRPS
# style images it flags 26 of 120, among them 13 of the 19 with an error above 0.1 and the 8 worst; renders and
# photos stay under 0.05
NO_FACE_SPREAD = 0.18  # above this spread (or with weak boxes only) a second opinion decides whether there is a face:
# the highest spread on a strongly detected RRPS style portrait is 0.17, a coffee cup's 0.19, coins' 0.25
CNN_MAX_SIDE = 384  # the CNN searches larger views downscaled to this (its cost grows with the area)
MEDIAN_BLUR = 5  # kernel (pixels at the working size) that smooths brush strokes and halftone dots
CLAHE_CLIP, CLAHE_TILES = 2.0, 8
BOX_SCALES = (0.95, 1.0, 1.05)  # box ensemble: sizes relative to the detected box
BOX_SHIFTS = (-0.03, 0.0, 0.03)  # and shifts in box widths, along x and y
ENSEMBLE_ROTATIONS = (-6.0, 0.0, 6.0)  # degrees, about the box centre
CNN_BOX_TO_HOG = (1.124, 0.007, 0.029)  # an mmod box -> the HOG-like box the predictor was trained on:
# size factor, centre shift (x, y) in box widths; the median over faces both detectors found
LANDMARKS_TO_BOX = (2.80, -0.004, -0.062)  # 68 points -> the HOG-like box they imply: its side over the points'
# RMS radius about their centroid, its centre's shift (x, y) from the centroid in sides; the median over the
# style images' HOG boxes scoring >= 0 and the predictor's points in them (no ground truth)

# the 68-point scheme mirrored left <-> right (jaw, brows, nose, eyes, outer lip, inner lip)
MIRRORED_INDEX = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


class CheckByEyeWarning(InputWarning):
    """Landmarks worth checking on their overlay: only a weak face detection, or predictions that disagree."""


@contextlib.contextmanager
def checks_by_eye() -> Iterator[list[str]]:
    """Collect the ``CheckByEyeWarning`` messages raised inside the block (every one, repeats too) into the list
    it yields, filled when the block ends; any other warning is passed on as Python would show it."""
    messages = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CheckByEyeWarning)
            yield messages
    finally:
        for warning in caught:
            if issubclass(warning.category, CheckByEyeWarning):
                messages.append(str(warning.message))
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


@dataclass
class FaceView:
    """A preprocessed version of the working image: uint8 (H, W, 3) RGB and the (2, 3) affine to working pixels."""

    image: np.ndarray
    to_work: np.ndarray


@functools.lru_cache(maxsize=None)
def dlib_models() -> tuple:
    """(shape predictor, HOG detector, CNN detector), loaded once on first use."""
    import dlib
    import face_recognition_models

    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    cnn = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    return predictor, dlib.get_frontal_face_detector(), cnn


def detect_landmarks(image: Union[np.ndarray, torch.Tensor], source: str = "image",
                     manual_path: Optional[str] = None,
                     confirm_face: Optional[Callable[[np.ndarray], bool]] = None) -> np.ndarray:
    """68 landmarks of the main face in an image, as a (68, 2) float64 array of pixel (x, y).

    image: tensor (3, H, W) or array (H, W), (H, W, 1|3|4) RGB(A), uint8, uint16 or float in [0, 1].
    source and manual_path word the messages: a ``CheckByEyeWarning`` naming ``source`` when only a weak
    detection was found or the predictions on the chosen box scatter (spread above UNCERTAIN_SPREAD); when
    no face is found anywhere, InputError (one line) naming ``source`` and telling the user to write
    ``manual_path`` by hand. confirm_face: a second opinion, called with the uint8 (H, W, 3) RGB image when dlib's
    evidence is thin (weak boxes only, or a spread above NO_FACE_SPREAD); False makes it "no face found" too.
    """
    rgb = as_rgb_uint8(image)
    scale = working_scale(rgb.shape[:2])
    work = rgb if scale == 1.0 else resize(rgb, scale)
    target = manual_path if manual_path is not None else "a landmark file beside it"
    candidates, weak = face_candidates(work)
    if not candidates:
        raise InputError(f"{source}: no face found by dlib (HOG and CNN detectors, several preprocessings); "
                         f"write its landmarks by hand to {target}: {FORMAT_HINT}")
    view, box, spread = most_consistent(candidates)
    if (weak or spread > NO_FACE_SPREAD) and confirm_face is not None and not confirm_face(rgb):
        raise InputError(f"{source}: no face found (dlib's boxes are weak or disagree, and MediaPipe sees no face); "
                         f"use a portrait, or write its landmarks by hand to {target}: {FORMAT_HINT}")
    if weak:
        warnings.warn(f"{source}: only a weak face detection; check its landmarks on the overlay "
                      f"(or write them by hand to {target})", CheckByEyeWarning, stacklevel=2)
    elif spread > UNCERTAIN_SPREAD:
        warnings.warn(f"{source}: uncertain landmarks (the predictor's answers on nearby boxes scatter: spread "
                      f"{spread:.2f}, above {UNCERTAIN_SPREAD}); check them on the overlay (or write them by hand "
                      f"to {target})", CheckByEyeWarning, stacklevel=2)
    points = to_file_pixels(transform_points(view.to_work, refined_landmarks(view, box, spread)), scale)
    return np.clip(points, -0.5, np.array(rgb.shape[1::-1]) - 0.5)  # landmark files must lie inside the image


def as_rgb_uint8(image: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
    """Any image the pipeline meets -> uint8 (H, W, 3) RGB; alpha composited over white, 16-bit rescaled."""
    if hasattr(image, "detach"):
        return to_uint8_array(image)
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    if image.ndim == 3 and image.shape[2] == 4:
        image = composite_over_white(image)
    return to_uint8_array(image)


def working_scale(shape: Sequence[int]) -> float:
    """The factor that brings an image of shape (H, W) into [DETECTION_MIN_SIDE, DETECTION_MAX_SIDE]."""
    side = max(shape)
    return float(np.clip(side, DETECTION_MIN_SIDE, DETECTION_MAX_SIDE)) / side


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """uint8 (H, W, 3) image scaled by ``scale`` (area filter to shrink, cubic to enlarge)."""
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)


def detection_views(work: np.ndarray) -> list[FaceView]:
    """The working image and its preprocessed versions: [plain, median-smoothed, CLAHE, gray, rotated..., downscaled, padded]."""
    identity = np.eye(2, 3)
    smoothed = cv2.medianBlur(work, MEDIAN_BLUR)
    lab = cv2.cvtColor(work, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(CLAHE_CLIP, (CLAHE_TILES, CLAHE_TILES)).apply(lab[:, :, 0])
    gray = np.repeat(cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    views = [FaceView(work, identity), FaceView(smoothed, identity),
             FaceView(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), identity), FaceView(gray, identity)]
    views += [rotated_view(work, angle) for angle in RETRY_ROTATIONS]
    return views + [scaled_view(work, RETRY_DOWNSCALE), padded_view(work, PAD_FRACTION)]


def face_candidates(work: np.ndarray) -> tuple[list[tuple[FaceView, Box]], bool]:
    """([(FaceView, box (left, top, right, bottom) in it)], weak): the candidate faces in the working image.

    In order of trust: HOG boxes scoring at least CANDIDATE_HOG_THRESHOLD on the image, CNN boxes on the
    median-smoothed view, HOG boxes as strong on the other detection views, then the weaker HOG boxes down
    to LAST_RESORT_HOG_THRESHOLD; weak=True when there are only those. Each box is put in its frame
    (``in_frame``); of duplicates, the first is kept.
    """
    plain = FaceView(work, np.eye(2, 3))
    views = detection_views(work)
    scored = [(view, box, score) for view in views
              for box, score in hog_boxes(view.image, LAST_RESORT_HOG_THRESHOLD)]
    strong = [(view, box) for view, box, score in scored if score >= CANDIDATE_HOG_THRESHOLD]
    on_plain = [(view, box) for view, box in strong if view is views[0]]
    found = on_plain + [(views[1], box) for box in cnn_boxes(views[1].image)]
    found += [(view, box) for view, box in strong if view is not views[0]]
    weak = not found
    found += [(view, box) for view, box, score in scored if score < CANDIDATE_HOG_THRESHOLD]
    unique = {}
    for view, box in found:
        frame, frame_box = in_frame(view, box, plain)
        unique.setdefault((id(frame),) + tuple(np.round(frame_box).astype(int)), (frame, frame_box))
    return list(unique.values()), weak and bool(found)


def in_frame(view: FaceView, box: Box, plain: FaceView) -> tuple[FaceView, Box]:
    """A detection in a view -> (frame, box in it): the frame is the view itself for a rotated view (its image
    is the unfiltered working image rotated), else the plain working image with the box mapped into it."""
    if view.to_work[0, 1] != 0.0:
        return view, box
    corners = transform_points(view.to_work, np.array([box[:2], box[2:]], dtype=np.float64))
    return plain, tuple(corners.ravel())


def most_consistent(candidates: Sequence[tuple[FaceView, Box]]) -> tuple[FaceView, Box, float]:
    """The first candidate (FaceView, box) of ``candidates`` whose predictions agree almost as well as the best,
    with its ``prediction_spread``: (view, box, spread).

    Boxes narrower than MIN_WIDTH_FRACTION of the widest are dropped (face parts); of the rest, the first
    whose ``prediction_spread`` is at most SPREAD_TOLERANCE times the lowest.
    """
    widest = max(box[2] - box[0] for _, box in candidates)
    wide = [(view, box) for view, box in candidates if box[2] - box[0] >= MIN_WIDTH_FRACTION * widest]
    spreads = [prediction_spread(view, box) for view, box in wide]
    return next((*candidate, spread) for candidate, spread in zip(wide, spreads)
                if spread <= SPREAD_TOLERANCE * min(spreads))


def prediction_spread(view: FaceView, box: Box) -> float:
    """How much the predictor's answers on the jittered boxes and the mirror image scatter.

    The RMS distance of those (68, 2) predictions from their per-coordinate median, over the RMS radius
    of the median shape about its centroid (so comparable between boxes of any size).
    """
    predictions = mirrored_box_predictions(view.image, box)
    median = np.median(predictions, axis=0)
    radius = np.sqrt(np.mean(np.sum((median - median.mean(axis=0)) ** 2, axis=1)))
    return np.sqrt(np.mean(np.sum((predictions - median) ** 2, axis=2))) / radius


def hog_boxes(image: np.ndarray, threshold: float) -> list[tuple[Box, float]]:
    """HOG detections scoring at least ``threshold``: [(box (left, top, right, bottom), score)]."""
    _, hog, _ = dlib_models()
    rects, scores, _ = hog.run(image, HOG_UPSAMPLE, threshold)
    return [((r.left(), r.top(), r.right(), r.bottom()), score) for r, score in zip(rects, scores)]


def cnn_boxes(image: np.ndarray) -> list[Box]:
    """CNN (mmod) detections, each mapped to the HOG-like box the shape predictor expects.

    An image larger than CNN_MAX_SIDE is searched downscaled and the boxes scaled back.
    """
    _, _, cnn = dlib_models()
    size_factor, shift_x, shift_y = CNN_BOX_TO_HOG
    factor = min(1.0, CNN_MAX_SIDE / max(image.shape[:2]))
    boxes = []
    for detection in cnn(image if factor == 1.0 else resize(image, factor), 0):
        r = detection.rect
        width = (r.right() - r.left()) / factor
        centre_x = ((r.left() + r.right()) / 2 + 0.5) / factor - 0.5 + shift_x * width
        centre_y = ((r.top() + r.bottom()) / 2 + 0.5) / factor - 0.5 + shift_y * width
        half = size_factor * width / 2
        boxes.append((centre_x - half, centre_y - half, centre_x + half, centre_y + half))
    return boxes


def scaled_view(work: np.ndarray, factor: float) -> FaceView:
    """The working image scaled by ``factor`` and the affine back (pixel centres kept: x = (x' + 0.5) / f - 0.5)."""
    offset = 0.5 / factor - 0.5
    return FaceView(resize(work, factor), np.array([[1 / factor, 0.0, offset], [0.0, 1 / factor, offset]]))


def padded_view(work: np.ndarray, fraction: float) -> FaceView:
    """The working image with its border replicated by ``fraction`` of its longer side, and the affine back."""
    pad = int(round(fraction * max(work.shape[:2])))
    padded = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return FaceView(padded, np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad]]))


def rotated_view(image: np.ndarray, degrees: float, centre: Optional[Sequence[float]] = None) -> FaceView:
    """The image rotated about ``centre`` (default: its centre; border replicated) and the affine back."""
    height, width = image.shape[:2]
    centre = ((width - 1) / 2, (height - 1) / 2) if centre is None else centre
    forward = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    rotated = cv2.warpAffine(image, forward, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return FaceView(rotated, cv2.invertAffineTransform(forward))


def transform_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points."""
    return points @ affine[:, :2].T + affine[:, 2]


def ensemble_landmarks(image: np.ndarray, box: Box) -> np.ndarray:
    """The per-coordinate median of the predictor over the test-time ensemble: (68, 2) pixel (x, y).

    Every ENSEMBLE_ROTATIONS angle about the box centre, on the image and its median-smoothed copy,
    each through ``mirrored_box_predictions``.
    """
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    predictions = []
    for degrees, version in itertools.product(ENSEMBLE_ROTATIONS, (image, cv2.medianBlur(image, MEDIAN_BLUR))):
        view = rotated_view(version, degrees, centre)
        predictions += [transform_points(view.to_work, points) for points in mirrored_box_predictions(view.image, box)]
    return np.median(np.stack(predictions), axis=0)


def refined_landmarks(view: FaceView, box: Box, spread: float) -> np.ndarray:
    """``ensemble_landmarks`` on ``box``, then on the box its points imply where the predictions agree as well there.

    On a three-quarter view or an unusual detection the box can sit off the face the predictor sees; the box
    fitted to the first answer (``box_from_landmarks``) is used when its ``prediction_spread`` is no higher.
    spread: ``box``'s own prediction_spread (``most_consistent`` has computed it).
    """
    points = ensemble_landmarks(view.image, box)
    refined = box_from_landmarks(points)
    if prediction_spread(view, refined) > spread:
        return points
    return ensemble_landmarks(view.image, refined)


def box_from_landmarks(points: np.ndarray) -> Box:
    """The square box (left, top, right, bottom) that 68 points (68, 2) imply, by LANDMARKS_TO_BOX."""
    side_factor, shift_x, shift_y = LANDMARKS_TO_BOX
    centroid = points.mean(axis=0)
    side = side_factor * np.sqrt(np.mean(np.sum((points - centroid) ** 2, axis=1)))
    centre_x, centre_y = centroid + np.array([shift_x, shift_y]) * side
    return (centre_x - side / 2, centre_y - side / 2, centre_x + side / 2, centre_y + side / 2)


def mirrored_box_predictions(image: np.ndarray, box: Box) -> np.ndarray:
    """The predictor on every jittered box, on the image and on its mirror image: (2 J, 68, 2) pixel (x, y)."""
    width = image.shape[1]
    mirror = np.ascontiguousarray(image[:, ::-1])
    mirror_box = (width - 1 - box[2], box[1], width - 1 - box[0], box[3])
    direct = [predict(image, jittered) for jittered in jittered_boxes(box)]
    mirrored = [predict(mirror, jittered)[MIRRORED_INDEX] for jittered in jittered_boxes(mirror_box)]
    mirrored = np.stack(mirrored) * [-1.0, 1.0] + [width - 1.0, 0.0]
    return np.concatenate([np.stack(direct), mirrored])


def jittered_boxes(box: Box) -> list[Box]:
    """Boxes (left, top, right, bottom) around ``box``: every BOX_SCALES size at every BOX_SHIFTS offset."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    boxes = []
    for scale, shift_x, shift_y in itertools.product(BOX_SCALES, BOX_SHIFTS, BOX_SHIFTS):
        x, y = centre_x + shift_x * width, centre_y + shift_y * width
        half_w, half_h = scale * width / 2, scale * height / 2
        boxes.append((x - half_w, y - half_h, x + half_w, y + half_h))
    return boxes


def predict(image: np.ndarray, box: Box) -> np.ndarray:
    """The shape predictor's 68 points (68, 2) pixel (x, y) for one box (left, top, right, bottom)."""
    import dlib

    predictor, _, _ = dlib_models()
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = predictor(image, rect)
    return np.array([(part.x, part.y) for part in shape.parts()], dtype=np.float64)
