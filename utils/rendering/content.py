"""Step 2 of the method: render a mesh into content views, with cameras, vertex projections and visibility."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Container, List, Optional, Tuple

import numpy as np
import torch

from utils.rendering.cameras import frame_mesh, make_cameras, project, save_cameras, world_to_pixel
from utils.errors import InputError
from utils.io.files import load_json, save_npy, sweep_temporaries
from utils.io.images import read_image_array, save_image, to_uint8_array
from utils.io.layout import CAMERAS_MESH_KEY, ContentFolder
from utils.io.mesh import load_mesh, to_pytorch3d
from utils.rendering.render import render_views, vertex_visibility

if TYPE_CHECKING:
    from pytorch3d.renderer import CamerasBase, FoVPerspectiveCameras

    from utils.io.mesh import Mesh


@dataclass
class RenderSettings:
    """How content views are rendered; the defaults are RRPS's (rendering.py's flags come from here)."""

    azimuths: List[float] = field(default_factory=lambda: [-10.0, 10.0])  # degrees; RRPS renders two views
    #   -20 and +20 measured (bench_quality's turned judge, 4 dev closed heads): with the flat warp targets of before
    #   projections_at_depth, sides/front 0.888 -> 0.881, front colour 0.158 -> 0.163, the astronaut's nose a spike;
    #   with them, 0.894 -> 0.875 (hopper 0.88 -> 0.81), front colour 0.156 -> 0.166, the nose a profile again
    elevations: Optional[List[float]] = None  # degrees, one per azimuth; None: 0 for every view
    image_size: int = 512  # pixels a side
    fov: float = 15.0  # vertical field of view, degrees
    distance: Optional[float] = None  # None: frame the mesh's bounding box
    look_at: Optional[Tuple[float, float, float]] = None  # None: the bounding box's centre
    margin: float = 1.15  # framing slack around the bounding box
    light: Optional[float] = None  # None: unlit colours; else the headlight's diffuse share (0.3: 30%)
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB in [0, 1]
    visibility_tolerance: float = 0.01  # depth slack, relative to the bounding-box diagonal

    def __post_init__(self):
        if self.elevations is None:
            self.elevations = [0.0] * len(self.azimuths)
        if len(self.azimuths) != len(self.elevations):
            raise ValueError(f"give one elevation per azimuth ({len(self.azimuths)})")


def is_up_to_date(mesh_path: str | Path, content_dir: str | Path, settings: RenderSettings) -> bool:
    """True when every output exists, is newer than the mesh, and was rendered with the same settings."""
    outputs = ContentFolder(content_dir).outputs(len(settings.azimuths))
    if not all(path.is_file() for path in outputs):
        return False
    if min(path.stat().st_mtime for path in outputs) < Path(mesh_path).stat().st_mtime:
        return False
    try:
        stored = load_json(outputs[-1])
    except InputError:  # an unreadable cameras.json means: render again
        return False
    return isinstance(stored, dict) and stored.get("render_settings") == _as_json(settings)


def render_content(mesh_path: str | Path, content_dir: str | Path, settings: RenderSettings,
                   device: str | torch.device = "cpu", backend: str = "auto",
                   log: Callable[[str], None] = print) -> torch.Tensor:
    """Render one mesh into ``content_dir``: view_<k>.png, verts2d.npy (V, K, 2), visible.npy (V, K), cameras.json.

    landmarks_<k>.txt (perhaps corrected by hand) is kept when view k comes out identical (pixels and camera),
    else moved aside to landmarks_<k>.txt.old (or .old.<n>: nothing set aside before is overwritten), which ``log``
    reports in one line.
    Returns the share of vertices visible in each view, (K,).
    """
    mesh = load_mesh(mesh_path)
    cameras, at, distance = view_cameras(mesh, settings, device)
    images, pixels, visible = observe_mesh(mesh, cameras, settings, backend)
    check_views_see_the_mesh(mesh_path, visible, settings)
    folder = ContentFolder(content_dir)
    sweep_temporaries(folder.path, log=log)
    unchanged = unchanged_views(folder, images, world_to_pixel(cameras, settings.image_size))
    remove_stale_views(folder, len(images))
    moved = set_aside_landmarks(folder, unchanged)
    if moved:
        log(f"{content_dir}: the views changed, so landmarks were moved aside ({', '.join(moved)}; "
            "run correspondences.py for new ones)")
    for k, image in enumerate(images):
        save_image(folder.view(k), image)
    save_npy(folder.verts2d, pixels.float())
    save_npy(folder.visible, visible)
    save_cameras(folder.cameras, cameras, settings.image_size, settings.azimuths,
                 settings.elevations, distance, settings.fov, at.tolist(),
                 extra={CAMERAS_MESH_KEY: str(mesh_path), "render_settings": _as_json(settings)})
    return visible.float().mean(0)


def check_views_see_the_mesh(mesh_path: str | Path, visible: torch.Tensor, settings: RenderSettings) -> None:
    """InputError naming the mesh when a view sees none of its vertices (visible: (V, K) bool)."""
    for k, seen in enumerate(visible.any(0).tolist()):
        if not seen:
            raise InputError(f"{mesh_path}: no vertex is visible in view {k} (azimuth {settings.azimuths[k]:g}, "
                             f"elevation {settings.elevations[k]:g}); check --look-at, --distance and the mesh")


def view_cameras(mesh: Mesh, settings: RenderSettings,
                 device: str | torch.device = "cpu") -> tuple[FoVPerspectiveCameras, torch.Tensor, float]:
    """The K cameras of ``settings`` (a ``RenderSettings``) around ``mesh``, framing its bounding box unless
    ``settings`` fixes the look-at point or the distance. Returns (cameras, at (3,) tensor, distance)."""
    at, distance = frame_mesh(mesh.verts, settings.fov, settings.margin)
    at = torch.tensor(settings.look_at, dtype=torch.float32) if settings.look_at is not None else at
    distance = settings.distance if settings.distance is not None else distance
    cameras = make_cameras(settings.azimuths, settings.elevations, distance, settings.fov, at, device=device)
    return cameras, at, distance


def observe_mesh(mesh: Mesh, cameras: CamerasBase, settings: RenderSettings,
                 backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What K cameras see of ``mesh`` (V vertices): renders, vertex projections and visibility, with the image
    size, light, background and depth tolerance of ``settings`` (a ``RenderSettings``).

    Returns (images (K, 3, S, S) in [0, 1], pixels (V, K, 2) pixel (x, y), visible (V, K) bool).
    """
    device = cameras.device
    with torch.no_grad():
        images, zbuf = render_views(to_pytorch3d(mesh, device), cameras, settings.image_size, backend=backend,
                                    light=settings.light, background=settings.background)
        pixels, depth = project(mesh.verts.to(device), world_to_pixel(cameras, settings.image_size))
        visible = vertex_visibility(pixels, depth, zbuf, settings.visibility_tolerance * mesh.bbox_diagonal())
    return images, pixels, visible


def remove_stale_views(folder: ContentFolder, num_views: int) -> None:
    """Before a render: delete view_<k>.png left from an earlier render with more views (folder: ContentFolder)."""
    for k, path in folder.views().items():
        if k >= num_views:
            path.unlink()


def unchanged_views(folder: ContentFolder, images: torch.Tensor, P: torch.Tensor) -> set[int]:
    """Indices k whose stored view_<k>.png has the new render's exact pixels and whose stored camera matrix
    is the new one: the views their landmark files were made for.

    folder: ContentFolder; images: (K, 3, S, S) new renders; P: (K, 3, 4) new world-to-pixel matrices. Content
    is compared, not timestamps: touching a mesh without changing it keeps its landmarks.
    """
    try:
        stored = load_json(folder.cameras)["views"]
    except (InputError, KeyError, TypeError):
        return set()
    same = set()
    for k, image in enumerate(images):
        old_view = folder.view(k)
        if k >= len(stored) or not old_view.is_file() or "P" not in stored[k]:
            continue
        if not np.allclose(np.asarray(stored[k]["P"]), P[k].cpu().numpy(), rtol=1e-5, atol=1e-6):
            continue
        try:
            old_pixels = to_uint8_array(read_image_array(old_view))
        except InputError:
            continue
        if np.array_equal(old_pixels, to_uint8_array(image)):
            same.add(k)
    return same


def set_aside_landmarks(folder: ContentFolder | str | Path, keep: Container[int]) -> list[str]:
    """(folder: a ContentFolder or a path) Move landmarks_<k>.txt aside for every k not in ``keep``, to landmarks_<k>.txt.old or, when that is taken
    (a hand edit moved aside by an earlier render), the first free landmarks_<k>.txt.old.<n>: nothing moved aside
    before is overwritten. A file equal to one already aside is removed instead. Returns "<name> -> <new name>"
    for each file moved."""
    content_dir, moved = Path(folder), []
    for k, path in ContentFolder(folder).landmark_files().items():
        if k in keep:
            continue
        aside = [path.with_name(path.name + ".old")]
        aside += content_dir.glob(path.name + ".old.*")
        text = path.read_bytes()
        if any(other.is_file() and other.read_bytes() == text for other in aside):
            path.unlink()
            continue
        target = aside[0]
        number = 2
        while target.exists():
            target = path.with_name(f"{path.name}.old.{number}")
            number += 1
        path.replace(target)
        moved.append(f"{path.name} -> {target.name}")
    return moved


def _as_json(settings):
    """Settings as plain JSON values (tuples become lists), for comparison with a stored copy."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}
