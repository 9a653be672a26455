"""The face in a photo: MediaPipe's face mesh (478 points with depth), its person mask, dlib's 68 landmarks.

MediaPipe 0.10.x's legacy solutions run offline (their models ship in the wheel). Its points come
as (x, y) normalised by the image size and z (toward the camera negative) in the x scale; here
they are converted to pixels (x, y) and a depth in pixels that grows toward the viewer.
"""
import contextlib
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import cv2
import numpy as np
import scipy.ndimage

from models.landmark_detector import detect_landmarks, hog_boxes, predict
from utils.errors import InputError

MAX_FACES = 5  # MediaPipe looks for up to this many faces; the largest is modelled
FACE_CROP_MARGIN = 0.6  # dlib runs on the face's box enlarged by this fraction of its size on every side
SMALL_FACE_CROP = 1.0  # a face MediaPipe misses is looked for again in dlib's box enlarged this much on every side
# MediaPipe face mesh indices: left/right pairs (subject's right first) and the face's outline
SYMMETRIC_PAIRS = ((33, 263), (133, 362), (61, 291), (234, 454), (127, 356), (58, 288), (105, 334), (48, 278))
CHIN, FOREHEAD, NOSE_TIP = 152, 10, 1


def mediapipe_or_error() -> ModuleType:
    """The ``mediapipe`` module, or ``InputError`` saying how to install it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logs: errors only
    try:
        import mediapipe
    except ImportError:
        raise InputError("mediapipe is not installed; run `bash scripts/setup_env.sh` "
                         "(it installs mediapipe==0.10.14 without opencv-contrib-python)") from None
    return mediapipe


@dataclass
class Face:
    """One face found in a photo.

    points: (478, 3) float64 MediaPipe points: pixel (x, y) and depth in pixels, larger toward the viewer;
    oval: (36,) int64 indices of the face outline in order around it; faces_found: how many faces were seen.
    """

    points: np.ndarray
    oval: np.ndarray
    faces_found: int

    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) pixel box of the points."""
        return (*self.points[:, :2].min(0), *self.points[:, :2].max(0))

    def height(self) -> float:
        """Forehead-to-chin distance in pixels."""
        return float(np.linalg.norm(self.points[CHIN, :2] - self.points[FOREHEAD, :2]))


def find_face(image: np.ndarray, what: str) -> Face:
    """The largest face MediaPipe finds in a uint8 (H, W, 3) RGB photo, as a ``Face``.

    what: the photo's name for messages. No face raises ``InputError``.
    """
    mp = mediapipe_or_error()
    candidates = _face_meshes(mp, image)
    if not candidates:  # MediaPipe's detector is for near faces: a small one is looked for in a crop around dlib's box
        boxes = hog_boxes(image, 0.0)
        if boxes:
            box, _ = max(boxes, key=lambda item: (item[0][2] - item[0][0]) * item[1])
            x0, y0, x1, y1 = grown_box(box, [SMALL_FACE_CROP * max(box[2] - box[0], box[3] - box[1])] * 4, image.shape)
            candidates = [points + np.array([x0, y0, 0.0]) for points in _face_meshes(mp, image[y0:y1, x0:x1])]
    if not candidates:
        raise InputError(f"{what}: no face found; use a photo with one face seen from the front")
    points = max(candidates, key=lambda pts: float(np.prod(np.ptp(pts[:, :2], axis=0))))
    return Face(points=points, oval=_oval_order(mp.solutions.face_mesh.FACEMESH_FACE_OVAL),
                faces_found=len(candidates))


def sees_a_face(image: np.ndarray) -> bool:
    """Whether ``find_face`` finds a face in a uint8 (H, W, 3) RGB image (True when MediaPipe is not installed:
    then nothing can say there is none)."""
    try:
        mediapipe_or_error()
    except InputError:
        return True
    try:
        find_face(image, "image")
    except InputError:
        return False
    return True


def _face_meshes(mp, image):
    """MediaPipe's face meshes in a uint8 RGB image: a list of (478, 3) pixel x, y and depth (toward the viewer)."""
    height, width = image.shape[:2]
    with _quiet(), mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                                    max_num_faces=MAX_FACES) as mesher:
        found = mesher.process(np.ascontiguousarray(image)).multi_face_landmarks or []
    return [np.array([(p.x * width, p.y * height, -p.z * width) for p in face.landmark]) for face in found]


def portrait_crop(image: np.ndarray, face: Face, around: Sequence[float] = (2.0, 1.2, 2.0, 1.6),
                  min_share: float = 0.5) -> tuple[np.ndarray, np.ndarray, Face]:
    """(the photo cropped to the head and shoulders of ``face``, its (x, y) offset (2,) in the photo, ``face``
    moved into it) when that crop is under ``min_share`` of the photo's area; else the photo, (0, 0), ``face``.

    around: (left, top, right, bottom) margins in face heights from the face's box. The person segmentation
    sees a whole photo at 256 x 256: a face 150 px tall in a 1024 px photo got no mask at all.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = grown_box(face.box(), [side * face.height() for side in around], image.shape)
    if (x1 - x0) * (y1 - y0) >= min_share * height * width:
        return image, np.zeros(2), face
    moved = Face(points=face.points - np.array([x0, y0, 0.0]), oval=face.oval, faces_found=face.faces_found)
    return np.ascontiguousarray(image[y0:y1, x0:x1]), np.array([x0, y0], dtype=np.float64), moved


def person_mask(image: np.ndarray) -> np.ndarray:
    """MediaPipe's selfie segmentation of a uint8 (H, W, 3) RGB photo: (H, W) float32 in [0, 1], 1 on people."""
    mp = mediapipe_or_error()
    with _quiet(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        mask = segmenter.process(np.ascontiguousarray(image)).segmentation_mask
    return np.asarray(mask, dtype=np.float32)


def without_plain_background(image: np.ndarray, mask: np.ndarray, border: float = 0.03, spread: float = 0.05,
                             tolerance: float = 0.1, flatness: float = 0.03, window: int = 5) -> np.ndarray:
    """The person mask (H, W) float32 with the photo's plain background taken out of it.

    The selfie segmentation paints a neck under the chin of a head with none (a render on white) and
    fills gaps between strands of hair. When the photo's border outside the person (``border`` of its
    size) has one colour (each channel's median absolute deviation under ``spread``), the pixels within
    ``tolerance`` (RGB distance, [0, 1] scale) of it, and flat (a standard deviation under ``flatness`` in
    their ``window`` x ``window`` neighbourhood: dark hair on a dark backdrop has strands and keeps), that
    connect to that border through such pixels are background, and are set to 0. Other photos keep their mask.
    """
    height, width = mask.shape
    frame = np.zeros_like(mask, dtype=bool)
    edge = max(1, int(round(border * min(height, width))))
    frame[:edge], frame[-edge:], frame[:, :edge], frame[:, -edge:] = True, True, True, True
    outside = image[frame & (mask < 0.5)].astype(np.float32) / 255.0
    if len(outside) < frame.sum() / 4:
        return mask
    colour = np.median(outside, axis=0)
    if np.median(np.abs(outside - colour), axis=0).max() >= spread:
        return mask
    pixels = image.astype(np.float32) / 255.0
    mean = cv2.blur(pixels, (window, window))
    texture = np.sqrt(np.clip(cv2.blur(pixels ** 2, (window, window)) - mean ** 2, 0, None)).max(axis=2)
    like = (np.linalg.norm(pixels - colour, axis=2) < tolerance) & (texture < flatness)
    labels, _ = scipy.ndimage.label(like)
    touching = np.unique(labels[frame & like & (mask < 0.5)])
    background = np.isin(labels, touching[touching > 0])
    return np.where(background, 0.0, mask).astype(np.float32)


def face_landmarks(image: np.ndarray, face: Face, what: str) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) pixel (x, y) of ``face`` in a uint8 RGB photo.

    dlib runs on a crop around the MediaPipe face, so that with several people it models the same face:
    the plain HOG detector and one prediction on its best box (a photo is the easy case), or the
    pipeline's robust detector (models.landmark_detector, about ten times slower) when HOG finds nothing.
    """
    left, top, right, bottom = face.box()
    x0, y0, x1, y1 = grown_box(face.box(), [FACE_CROP_MARGIN * max(right - left, bottom - top)] * 4, image.shape)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    boxes = hog_boxes(crop, 0.0)
    try:
        points = predict(crop, max(boxes, key=lambda item: item[1])[0]) if boxes else detect_landmarks(crop, what)
    except InputError:
        raise InputError(f"{what}: dlib found no face where MediaPipe saw one; use a sharper, frontal photo") from None
    return points + np.array([x0, y0])


def grown_box(box: Sequence[float], margins: Sequence[float],
              shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) int pixel bounds of ``box`` (left, top, right, bottom) grown by ``margins`` (left, top, right,
    bottom) pixels and clipped to an image of ``shape`` (H, W, ...): image[y0:y1, x0:x1] is the crop."""
    left, top, right, bottom = box
    height, width = shape[:2]
    return (int(max(0, left - margins[0])), int(max(0, top - margins[1])),
            int(min(width, right + margins[2])), int(min(height, bottom + margins[3])))


def _oval_order(edges):
    """The face outline's vertex indices in order, from MediaPipe's unordered outline edges."""
    following = dict(edges)
    start = min(following)
    order = [start]
    while following[order[-1]] != start:
        order.append(following[order[-1]])
    return np.array(order, dtype=np.int64)


@contextlib.contextmanager
def _quiet():
    """Silence MediaPipe: its Python warnings, and the C++ log lines (TensorFlow Lite's INFO, absl's W0000 ...)
    that it writes to the process's stderr whatever GLOG_minloglevel says."""
    import warnings

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
