"""The pictures the report makes: turntables of the stylized meshes (a strip and an animated GIF, rendered with
the project's renderer), landmark overlays the producers did not draw, and the overview picture of a pair.

Each is written atomically and redrawn only when missing or older than what it shows.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from utils.errors import InputError
from utils.io.files import atomic_path, is_stale
from utils.io.images import read_image_array, save_image, to_uint8_array
from utils.io.landmarks import load_landmarks
from utils.io.layout import PairFolder
from utils.io.mesh import load_mesh, to_pytorch3d
from utils.rendering.cameras import frame_mesh, make_cameras
from utils.rendering.render import render_views
from utils.report.plots import save_keypoint_overlay

OVERVIEW_HEIGHT = 256
OVERLAY_SIZE = 200  # pixels, longer side of the pictures the report draws landmarks on


@dataclass(frozen=True)
class TurntableSettings:
    """How the stylized meshes are turned around the head: K azimuths (degrees) at one elevation, one
    headlight (``light``: diffuse share), framed from the front with ``margin``; an animated GIF beside
    each strip when ``gif``."""

    azimuths: Tuple[float, ...] = tuple(np.linspace(-60.0, 60.0, 8).tolist())  # degrees (full circle: -180 ... 135)
    elevation: float = 0.0
    image_size: int = 256
    fov: float = 15.0
    margin: float = 1.2
    light: float = 0.5
    gif: bool = True
    frame_ms: int = 150


# ---- turntables -------------------------------------------------------------------------------------------

def render_turntable(mesh_path: str | Path, strip_path: str | Path, settings: TurntableSettings,
                     device: str | torch.device = "cpu", backend: str = "auto",
                     gif_path: str | Path | None = None) -> None:
    """Render ``mesh_path`` from the settings' K azimuths in one batch and save the views side by side.

    Writes strip_path (PNG, 3 x S x K*S) and, when settings.gif and ``gif_path`` is given, the animated GIF there.
    """
    mesh = load_mesh(mesh_path)
    at, distance = frame_mesh(mesh.verts, settings.fov, settings.margin)
    count = len(settings.azimuths)
    cameras = make_cameras(settings.azimuths, [settings.elevation] * count, distance, settings.fov, at, device)
    images, _ = render_views(to_pytorch3d(mesh, device), cameras, settings.image_size, backend=backend,
                             light=settings.light)
    save_image(strip_path, torch.cat(list(images.cpu()), dim=-1))
    if settings.gif and gif_path is not None:
        save_gif(gif_path, images.cpu(), settings.frame_ms, is_full_circle(settings))


def is_full_circle(settings: TurntableSettings) -> bool:
    """True when the azimuths go (nearly) all the way round, so the animation loops instead of swinging back."""
    azimuths = sorted(settings.azimuths)
    step = (azimuths[-1] - azimuths[0]) / max(len(azimuths) - 1, 1)
    return azimuths[-1] - azimuths[0] + step >= 359.0


def save_gif(path: str | Path, images: torch.Tensor, frame_ms: int, loop_forward: bool) -> None:
    """Animated GIF of K frames (K, 3, S, S) in [0, 1]; an arc plays forth and back, a full circle forward."""
    frames = [Image.fromarray(to_uint8_array(image)) for image in images]
    if not loop_forward:
        frames = frames + frames[-2:0:-1]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)


def update_turntables(folder: PairFolder | str | Path, settings: TurntableSettings, device: str | torch.device = "cpu",
                      backend: str = "auto") -> List[str]:
    """Render the turntables of a pair's meshes (``PairFolder.turntable``, of mesh.obj and mesh_smooth.obj) that
    are missing or older than their mesh. folder: a ``PairFolder`` or its path.

    Returns notes on meshes that could not be read (those are skipped).
    """
    pair, notes = PairFolder(folder), []
    for smooth in (False, True):
        mesh_path, strip_path = pair.mesh(smooth), pair.turntable(smooth)
        if not mesh_path.is_file() or not is_stale(strip_path, [mesh_path]):
            continue
        try:
            render_turntable(mesh_path, strip_path, settings, device, backend, gif_path=pair.turntable_gif(smooth))
        except InputError as err:
            notes.append(f"turntable of {mesh_path.name} not rendered: {err}")
    return notes


# ---- landmark overlays ------------------------------------------------------------------------------------

def landmark_overlay(image_path: str | Path | None, landmarks_path: str | Path, drawn_path: str | Path,
                     given_path: str | Path | None = None) -> Tuple[Optional[Path], str]:
    """The picture of an image with its landmarks: ``given_path`` when that exists, else ``drawn_path``, drawn
    (again) when older than the image or the landmarks. Returns (path or None, note: why there is none)."""
    if given_path is not None and Path(given_path).is_file():
        return Path(given_path), ""
    if image_path is None or not Path(image_path).is_file() or not Path(landmarks_path).is_file():
        return None, f"no landmarks ({Path(landmarks_path).name} missing)"
    if is_stale(drawn_path, [image_path, landmarks_path]):
        try:
            image = read_image_array(image_path)
            points = load_landmarks(landmarks_path, image_size=image.shape[:2])
        except InputError as err:
            return None, str(err)
        small, points = _resized(image, points, OVERLAY_SIZE)
        save_keypoint_overlay(drawn_path, small, {"landmarks": points}, show_indices=False)
    return Path(drawn_path), ""


def _resized(image, points, size):
    """An image (H, W, 3) scaled so its longer side is ``size`` pixels, and its (N, 2) pixel (x, y) points
    moved with it (pixel centres map to pixel centres)."""
    resized = _scaled(image, size / max(image.shape[:2]))
    height, width = resized.shape[:2]
    return resized, (points + 0.5) * np.array([width / image.shape[1], height / image.shape[0]]) - 0.5


# ---- the overview -----------------------------------------------------------------------------------------

def write_overview(row_paths: Sequence[Optional[Path]], strip_paths: Sequence[Path], path: str | Path,
                   height: int = OVERVIEW_HEIGHT) -> None:
    """One picture of a pair: the pictures of ``row_paths`` (content view, style exemplar, stylized views) in a
    row, the turntable strips of ``strip_paths`` below.

    Every picture is scaled to ``height`` pixels high (strips to the row's width); missing ones are left out.
    """
    pictures = [read_image_array(p) for p in row_paths if p is not None and p.is_file()]
    top = np.concatenate([_scaled(picture, height / picture.shape[0]) for picture in pictures], axis=1)
    strips = [read_image_array(strip) for strip in strip_paths if strip.is_file()]
    strips = [_scaled(strip, top.shape[1] / strip.shape[1]) for strip in strips]
    save_image(path, np.concatenate([top] + strips, axis=0))


def _scaled(image, factor):
    """An (H, W, 3) array resized by ``factor`` (area averaging when shrinking), at least one pixel a side."""
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
