"""Step 2 of the method: render a mesh into content views, with cameras, vertex projections and visibility."""
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from utils.rendering.cameras import frame_mesh, make_cameras, project, save_cameras, world_to_pixel
from utils.errors import InputError
from utils.io.files import load_json, save_npy
from utils.io.images import save_image
from utils.io.mesh import load_mesh, to_pytorch3d
from utils.rendering.render import render_views, vertex_visibility


@dataclass
class RenderSettings:
    """How content views are rendered; the defaults are RRPS's (rendering.py's flags come from here)."""

    azimuths: List[float] = field(default_factory=lambda: [-10.0, 10.0])  # degrees; RRPS renders two views
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


def content_outputs(content_dir, num_views):
    """The files rendering writes for one mesh; cameras.json is written last and marks completion."""
    content_dir = Path(content_dir)
    views = [content_dir / f"view_{k}.png" for k in range(num_views)]
    return views + [content_dir / "verts2d.npy", content_dir / "visible.npy", content_dir / "cameras.json"]


def is_up_to_date(mesh_path, content_dir, settings):
    """True when every output exists, is newer than the mesh, and was rendered with the same settings."""
    outputs = content_outputs(content_dir, len(settings.azimuths))
    if not all(path.is_file() for path in outputs):
        return False
    if min(path.stat().st_mtime for path in outputs) < Path(mesh_path).stat().st_mtime:
        return False
    try:
        stored = load_json(outputs[-1])
    except InputError:  # an unreadable cameras.json means: render again
        return False
    return isinstance(stored, dict) and stored.get("render_settings") == _as_json(settings)


def render_content(mesh_path, content_dir, settings, device="cpu", backend="auto"):
    """Render one mesh into ``content_dir``: view_<k>.png, verts2d.npy (V, K, 2), visible.npy (V, K), cameras.json.

    Returns the share of vertices visible in each view, (K,).
    """
    mesh = load_mesh(mesh_path)
    cameras, at, distance = view_cameras(mesh, settings, device)
    images, pixels, visible = observe_mesh(mesh, cameras, settings, backend)
    content_dir = Path(content_dir)
    remove_stale_views(content_dir, len(images))
    for k, image in enumerate(images):
        save_image(content_dir / f"view_{k}.png", image)
    save_npy(content_dir / "verts2d.npy", pixels.float())
    save_npy(content_dir / "visible.npy", visible)
    save_cameras(content_dir / "cameras.json", cameras, settings.image_size, settings.azimuths,
                 settings.elevations, distance, settings.fov, at.tolist(),
                 extra={"mesh": str(mesh_path), "render_settings": _as_json(settings)})
    return visible.float().mean(0)


def view_cameras(mesh, settings, device="cpu"):
    """The K cameras of ``settings`` (a ``RenderSettings``) around ``mesh``, framing its bounding box unless
    ``settings`` fixes the look-at point or the distance. Returns (cameras, at (3,) tensor, distance)."""
    at, distance = frame_mesh(mesh.verts, settings.fov, settings.margin)
    at = torch.tensor(settings.look_at, dtype=torch.float32) if settings.look_at is not None else at
    distance = settings.distance if settings.distance is not None else distance
    cameras = make_cameras(settings.azimuths, settings.elevations, distance, settings.fov, at, device=device)
    return cameras, at, distance


def observe_mesh(mesh, cameras, settings, backend="auto"):
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


def remove_stale_views(content_dir, num_views):
    """Before a render: delete view_<k>.png left from an earlier render with more views, and every
    landmarks_<k>.txt (they belong to the old views; correspondences.py makes them again)."""
    for path in content_dir.glob("view_*.png"):
        index = path.stem.split("_")[-1]
        if index.isdigit() and int(index) >= num_views:
            path.unlink()
    for path in content_dir.glob("landmarks_*.txt"):
        path.unlink()


def _as_json(settings):
    """Settings as plain JSON values (tuples become lists), for comparison with a stored copy."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}
