"""68-point face landmark files: one loader for the formats found in the wild, one writer.

Inside the code landmarks are (68, 2) float64 arrays of pixel (x, y), origin at
the top-left pixel centre. Files come as "x y" (dlib, this project), "x, y" and
"row, col" (Face-of-Art, comma separated, row first); ``load_landmarks``
converts them at the file boundary and ``save_landmarks`` always writes "x y".
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from utils.errors import InputError, InputWarning
from utils.io.files import save_text

if TYPE_CHECKING:
    import torch

LANDMARK_COUNT = 68
JAW_LEFT, JAW_RIGHT = 0, 16  # the jaw's ends: in (x, y) order they differ mostly horizontally
OUTER_EYE_CORNERS = (36, 45)  # the usual normaliser of landmark errors (inter-ocular distance)
ORDERS = ("auto", "xy", "rowcol")
BOUNDS_TOLERANCE = 0.05  # points may lie this fraction of the image size outside it
MIN_SPREAD = 3.0  # pixels: RMS distance of the points from their centroid; a face's is tens of pixels (RRPS: 49-90)
MAX_DUPLICATES = 8  # repeated points allowed (a closed mouth repeats up to 3 inner-lip points in the RRPS files)
IMPLAUSIBLE_TILT = 70.0  # degrees from horizontal of the jaw's ends beyond which a reading is taken as wrong
AMBIGUOUS_TILT = 45.0  # beyond this the other reading looks more upright: kept, with a warning
FORMAT_HINT = f'{LANDMARK_COUNT} lines "x y" (pixel coordinates, origin at the top-left pixel)'
_SEPARATORS = re.compile(r"[,;\s]+")


def load_landmarks(path: str | Path, order: str = "auto",
                   image_size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Read a 68-point landmark file and return a (68, 2) float64 array of pixel (x, y).

    order: "xy" (columns are x, y), "rowcol" (columns are row, col, Face-of-Art)
    or "auto": the file's own form decides ("a, b" comma separated is Face-of-Art's row, col; otherwise x y),
    unless that reading is clearly implausible (the jaw's ends, points 0 and 16, more than 70 degrees from
    horizontal, or points outside the image where the other reading fits); a reading that is plausible but
    tilted past 45 degrees, where the other order would look more upright, is kept with a
    ``LandmarkOrderWarning`` (a head may well be tilted: guessing would transpose its points silently).
    image_size: None, an int (square side) or (height, width); when given, every
    point must lie inside the image up to a tolerance of ``BOUNDS_TOLERANCE``.
    Raises InputError naming the file (and the line) for anything malformed.
    """
    path = Path(path)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    columns, line_numbers, comma_separated = _parse_columns(path)
    if order == "auto":
        order = _auto_order(path, columns, line_numbers, comma_separated, image_size)
    if order == "rowcol":
        columns = columns[:, ::-1]
    points = np.ascontiguousarray(columns, dtype=np.float64)
    check_not_degenerate(path, points)
    if image_size is not None:
        _check_inside(path, points, line_numbers, image_size)
    return points


def save_landmarks(path: str | Path, points: np.ndarray | torch.Tensor) -> None:
    """Write (68, 2) pixel (x, y) points (array or tensor) to ``path`` as 68 lines "x y", atomically."""
    if hasattr(points, "detach"):
        points = points.detach().cpu().numpy()
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (LANDMARK_COUNT, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected {LANDMARK_COUNT} finite (x, y) points, got shape {points.shape}")
    save_text(path, "".join(f"{x:.3f} {y:.3f}\n" for x, y in points))


def landmark_error(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean point distance between two (68, 2) landmark sets over the outer-eye-corner distance of ``reference``."""
    predicted, reference = np.asarray(predicted, np.float64), np.asarray(reference, np.float64)
    interocular = np.linalg.norm(reference[OUTER_EYE_CORNERS[1]] - reference[OUTER_EYE_CORNERS[0]])
    return float(np.linalg.norm(predicted - reference, axis=1).mean() / interocular)


def _parse_columns(path):
    """The file's numbers as a (68, 2) array in file column order, their line numbers (68,), and whether the
    columns are comma separated (Face-of-Art's form).

    InputError on anything else; blank lines are skipped.
    """
    if not path.is_file():
        raise InputError(f"{path}: landmark file not found; write {FORMAT_HINT}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is skipped
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; a landmark file has {FORMAT_HINT}") from None
    rows, line_numbers = [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = [field for field in _SEPARATORS.split(line.strip()) if field]
        if not fields:
            continue
        rows.append(_parse_point(path, line_number, line, fields))
        line_numbers.append(line_number)
    if len(rows) != LANDMARK_COUNT:
        found = "no points (empty file)" if not rows else f"{len(rows)} points"
        raise InputError(f"{path}: found {found}, expected {FORMAT_HINT}")
    comma_separated = any("," in line for line in text.splitlines())
    return np.array(rows, dtype=np.float64), np.array(line_numbers), comma_separated


def _parse_point(path, line_number, line, fields):
    """One line's two finite numbers; InputError naming the file and the line otherwise."""
    where = f"{path}, line {line_number} ({line.strip()[:40]!r})"
    if len(fields) != 2:
        raise InputError(f"{where}: expected two numbers per line, {FORMAT_HINT}")
    try:
        point = [float(field) for field in fields]
    except ValueError:
        raise InputError(f"{where}: not a number; expected {FORMAT_HINT}") from None
    if not np.isfinite(point).all():
        raise InputError(f"{where}: not a finite number; expected {FORMAT_HINT}")
    return point


def check_not_degenerate(path: str | Path, points: np.ndarray) -> None:
    """InputError when the points cannot be a face's: (nearly) all in one place, or many of them repeated.

    Such points make the landmark alignment divide by zero and the optimisation's loss non-finite.
    """
    spread = float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean()))
    if spread < MIN_SPREAD:
        raise InputError(f"{path}: the {LANDMARK_COUNT} points lie within {spread:.2g} px of one place, "
                         f"not a face's landmarks; expected {FORMAT_HINT}")
    repeated = LANDMARK_COUNT - len(np.unique(points, axis=0))
    if repeated > MAX_DUPLICATES:
        raise InputError(f"{path}: {repeated} of the {LANDMARK_COUNT} points repeat others, not a face's "
                         f"landmarks; expected {FORMAT_HINT}")


class LandmarkOrderWarning(InputWarning):
    """A landmark file's column order was read as its form says although the other order is plausible too."""


def _auto_order(path, columns, line_numbers, comma_separated, image_size):
    """"xy" or "rowcol" for a file: its form's order unless that reading is clearly implausible (see
    ``load_landmarks``); warns when both readings are plausible and the other looks more upright."""
    preferred, other = ("rowcol", "xy") if comma_separated else ("xy", "rowcol")
    tilt = _jaw_tilt(columns if preferred == "xy" else columns[:, ::-1])
    if image_size is not None and not _inside(columns if preferred == "xy" else columns[:, ::-1], image_size) \
            and _inside(columns if other == "xy" else columns[:, ::-1], image_size):
        return other
    if tilt > IMPLAUSIBLE_TILT:
        return other
    if tilt > AMBIGUOUS_TILT:
        form = '"a, b" (comma: row, col)' if comma_separated else '"a b" (x y)'
        warnings.warn(f"{path}: read as {preferred} from its form {form}, a face tilted {tilt:.0f} degrees; "
                      f"if the columns are the other way round, rewrite it as {FORMAT_HINT}",
                      LandmarkOrderWarning, stacklevel=3)
    return preferred


def _jaw_tilt(points):
    """Angle in degrees (0-90) between the horizontal and the line through the jaw's ends, points (68, 2) x, y."""
    dx, dy = np.abs(points[JAW_RIGHT] - points[JAW_LEFT])
    return float(np.degrees(np.arctan2(dy, dx)))


def _outside(points, image_size):
    """(68,) bool: points (x, y) outside the image (height, width or one side) by more than the tolerance."""
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    size = np.array([width, height], dtype=np.float64)
    margin = BOUNDS_TOLERANCE * size
    return ((points < -0.5 - margin) | (points > size - 0.5 + margin)).any(axis=1)


def _inside(points, image_size):
    """True when every point lies inside the image, up to the tolerance."""
    return not _outside(points, image_size).any()


def _check_inside(path, points, line_numbers, image_size):
    """InputError when a point lies outside the image (height, width) by more than the tolerance."""
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    outside = _outside(points, image_size)
    if outside.any():
        index = int(np.argmax(outside))
        x, y = points[index]
        raise InputError(f"{path}, line {line_numbers[index]}: point ({x:g}, {y:g}) lies outside the {width}x{height} image; "
                         f"expected {FORMAT_HINT} (a row, col file is read as such when comma separated, \"row, col\")")


def load_landmark_vertices(path: str | Path, vertex_count: int) -> np.ndarray:
    """A mesh's landmark vertices: 68 integer vertex indices, one per line -> int64 array (68,)."""
    path = Path(path)
    hint = f"expected {LANDMARK_COUNT} lines, each one vertex index in [0, {vertex_count})"
    try:
        fields = path.read_text(encoding="utf-8-sig").split()
        indices = np.array([int(field) for field in fields], dtype=np.int64)
    except (OSError, UnicodeDecodeError, ValueError):
        raise InputError(f"{path}: not a list of integers; {hint}") from None
    if indices.shape != (LANDMARK_COUNT,) or indices.min() < 0 or indices.max() >= vertex_count:
        raise InputError(f"{path}: {indices.size} indices in [{indices.min(initial=0)}, {indices.max(initial=0)}]; "
                         f"{hint} (the mesh has {vertex_count} vertices)")
    return indices


def project_landmark_vertices(verts2d: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Landmarks of every view from known landmark vertices: verts2d (V, K, 2), indices (68,) -> (K, 68, 2)."""
    return np.asarray(verts2d, dtype=np.float64)[np.asarray(indices)].transpose(1, 0, 2)
