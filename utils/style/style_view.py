"""The style exemplar seen from each content view, and its landmarks aligned to the content's.

A flat exemplar is "rotated" by the view's azimuth: the homography of a plane turned about its vertical
axis, seen by a pinhole camera with the content view's field of view (positive azimuth: the camera moves
towards the image's right side, which comes nearer and grows). The rotated exemplar's landmarks are then
aligned to the content landmarks by a similarity transform (Umeyama 1991); the aligned points are the
targets the warp pulls the content landmarks towards.
"""
import math

import cv2
import numpy as np
from skimage.transform import SimilarityTransform


def rotation_homography(azimuth_degrees: float, width: int, height: int, fov_degrees: float) -> np.ndarray:
    """3x3 homography (pixel (x, y) -> pixel) of a fronto-parallel image plane turned by ``azimuth_degrees``
    about the vertical line through the image centre; the focal length follows from ``fov_degrees`` and the
    longer side."""
    theta = math.radians(azimuth_degrees)
    focal = max(width, height) / 2.0 / math.tan(math.radians(fov_degrees) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    to_centre = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    turn = np.array([[math.cos(theta), 0.0, 0.0], [0.0, 1.0, 0.0], [-math.sin(theta) / focal, 0.0, 1.0]])
    return np.linalg.inv(to_centre) @ turn @ to_centre


def apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(3, 3) homography applied to (N, 2) points -> (N, 2)."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ matrix.T
    return homogeneous[:, :2] / homogeneous[:, 2:]


def rotate_exemplar(image: np.ndarray, landmarks: np.ndarray, azimuth_degrees: float,
                    fov_degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The exemplar as seen from a camera turned by ``azimuth_degrees``.

    image: (H, W, 3) float array; landmarks: (N, 2) pixel (x, y). Returns (image (H, W, 3), landmarks (N, 2)).
    """
    height, width = image.shape[:2]
    matrix = rotation_homography(azimuth_degrees, width, height, fov_degrees)
    turned = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    return turned, apply_homography(matrix, np.asarray(landmarks, dtype=np.float64))


def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (scale, rotation, translation) taking ``source`` onto ``target``: scikit-image's
    Umeyama (1991) fit, the same matrix as a hand-written one to 1e-14.

    source, target: (N, 2) corresponding points. Returns a (3, 3) homogeneous matrix.
    """
    fit = SimilarityTransform.from_estimate(np.asarray(source, np.float64), np.asarray(target, np.float64))
    if not fit:
        raise ValueError(f"no similarity fits these landmarks ({fit})")
    return fit.params


def aligned_targets(style_landmarks: np.ndarray, content_landmarks: np.ndarray, image_size: int,
                    margin: float = 5.0) -> np.ndarray:
    """Style landmarks moved onto the content landmarks by the best similarity, kept ``margin`` px inside
    the image: (N, 2) x2 -> (N, 2) warp targets in content pixels."""
    matrix = fit_similarity(style_landmarks, content_landmarks)
    targets = apply_homography(matrix, np.asarray(style_landmarks, np.float64))
    return np.clip(targets, margin, image_size - 1 - margin)
