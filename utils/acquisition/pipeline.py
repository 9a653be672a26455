"""From a photo to a closed, coloured head mesh and its 68 landmark vertices (see the package docstring)."""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from utils.acquisition.colors import blur_within, extend_beyond, hair_above, head_colors, symmetry_plane
from utils.acquisition.face import (face_landmarks, find_face, person_mask, portrait_crop,
                                    without_plain_background)
from utils.acquisition.head import (HeadShape, close_head, flat_bottom, follow_face_direction, front_depth,
                                    grid_sheet, head_region, inflation)
from utils.acquisition.photo import load_photo
from utils.io.files import save_text
from utils.io.layout import model_landmarks, model_mesh
from utils.io.mesh import Mesh, save_obj


BACK_BLEND = 0.5  # the back's colour is its own (hair above, the fill from outside the face) past this share of
# the back's height; nearer the outline it is blended with the fill of the whole head
HAIR_INSET = 0.08  # face heights: the hair colour on the back is taken this far inside the top of the head
HAIR_FADE = 0.3  # face heights: below the chin the back turns from that hair colour to the neck's over this


@dataclass
class AcquireSettings:
    """How a photo becomes a head mesh (the mesh: y up, the face toward +z, centred on the origin in x and y)."""

    vertices: int = 16000  # about this many front-sheet vertices (the back sheet adds nearly as many)
    height: float = 2.0  # the mesh's height in scene units
    min_side: int = 128  # pixels: photos with a shorter side are refused
    max_side: int = 1024  # pixels: photos with a longer side are downscaled first
    fill_blur: float = 0.15  # face heights: the photo's blur for the colours filled on unseen parts
    shape: HeadShape = field(default_factory=HeadShape)  # the head's proportions


@dataclass
class AcquiredHead:
    """The result of ``acquire_head``.

    mesh: the closed head (``Mesh`` with vertex colours); landmark_vertices: (68,) int64 in dlib's order;
    notes: one-line remarks for the user (several faces, the photo downscaled); seen: (V,) bool, the
    vertices whose colour came from the photo or its mirror image; on_face: (V,) bool, the front vertices inside
    the face's outline (MediaPipe's face oval); is_back: (V,) bool, the back sheet's vertices (not shared with
    the front's outline); to_photo: (scale, offset (2,)) mapping mesh (x, y) back to photo pixels:
    pixel = offset + (x, -y) / scale.
    """

    mesh: Mesh
    landmark_vertices: np.ndarray
    notes: list
    seen: np.ndarray
    on_face: np.ndarray
    is_back: np.ndarray
    to_photo: tuple

    def front_faces(self) -> torch.Tensor:
        """(F', 3) the mesh's faces with all three corners on the front sheet."""
        return self.mesh.faces[torch.from_numpy(~self.is_back)[self.mesh.faces].all(1)]


def acquire_head(image: np.ndarray, what: str = "photo", settings: AcquireSettings | None = None) -> AcquiredHead:
    """A closed coloured head mesh from a uint8 (H, W, 3) RGB portrait; ``what`` names it in messages."""
    settings = settings or AcquireSettings()
    image, crop_offset, face = portrait_crop(image, find_face(image, what))
    notes = [f"{what}: {face.faces_found} faces found; modelling the largest"] if face.faces_found > 1 else []
    landmarks = face_landmarks(image, face, what)
    region = head_region(without_plain_background(image, person_mask(image)), face, settings.shape)
    pixels, faces, rim = grid_sheet(region, settings.vertices)
    cut = flat_bottom(pixels, faces, rim, min_width=0.5 * float(np.ptp(face.points[:, 0])))
    base = inflation(pixels, faces, cut)
    front, on_face = front_depth(face, pixels, faces, rim, settings.shape.front_depth * base,
                                 settings.shape.face_join * face.height())
    points, all_faces, is_back, back_of = close_head(pixels, faces, rim, front, -settings.shape.back_depth * base,
                                                     cut)
    points = follow_face_direction(points, is_back, symmetry_plane(face.points)[1])
    face.points[:, 2] += _face_offset(front, on_face, pixels, face)
    landmark_vertices = _nearest_front_vertices(pixels, on_face, landmarks)
    on_face = np.concatenate([on_face, np.zeros(len(points) - len(on_face), dtype=bool)])
    back_height = np.zeros(len(points))
    back_height[is_back] = base[back_of] / base.max()  # 0 on the back's outline, 1 at most
    colors, seen = _colours(image, region, face, points, all_faces, is_back, on_face, back_height, settings.fill_blur)
    mesh, (scale, offset) = _to_scene(points, all_faces, colors, settings.height)
    notes += edge_notes(region, what)
    return AcquiredHead(mesh, landmark_vertices, notes, seen, on_face, is_back, (scale, offset + crop_offset))


def acquire_file(photo_path: str | Path, out_dir: str | Path,
                 settings: AcquireSettings | None = None) -> AcquiredHead:
    """Acquire ``photo_path`` into ``out_dir``/<stem>.obj and <stem>.landmarks.txt; returns the AcquiredHead.

    Both files are written atomically, the landmarks last (their presence marks a finished mesh).
    """
    settings = settings or AcquireSettings()
    photo_path = Path(photo_path)
    image, scale = load_photo(photo_path, settings.min_side, settings.max_side)
    head = acquire_head(image, str(photo_path), settings)
    if scale < 1.0:
        head.notes.append(f"{photo_path}: downscaled by {scale:.2f} to at most {settings.max_side} pixels a side")
    mesh_path, landmark_path = output_paths(photo_path, out_dir)
    save_obj(mesh_path, head.mesh)
    save_text(landmark_path, "".join(f"{index}\n" for index in head.landmark_vertices))
    return head


def output_paths(photo_path: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """(mesh path, landmark-vertex path) for a photo: <out_dir>/<stem>.obj and <stem>.landmarks.txt."""
    stem = Path(photo_path).stem
    return model_mesh(out_dir, stem), model_landmarks(out_dir, stem)


def _face_offset(front, on_face, pixels, face):
    """The depth shift that puts MediaPipe's points on the front sheet (median over the face's vertices)."""
    nearest = cKDTree(pixels[on_face]).query(face.points[:, :2])[1]
    return float(np.median(front[on_face][nearest] - face.points[:, 2]))


def _nearest_front_vertices(pixels, on_face, landmarks):
    """(68,) int64: for each landmark (68, 2) the front-sheet vertex nearest in the photo, preferring the face."""
    candidates = np.flatnonzero(on_face)
    return candidates[cKDTree(pixels[candidates]).query(landmarks)[1]].astype(np.int64)


def _colours(image, region, face, points, faces, is_back, on_face, back_height, fill_blur):
    """(V, 3) colours and (V,) bool seen (``colors.head_colors``) of the head (points (V, 3) in photo pixels).

    The photo is first spread past the head's outline and blurred within it for the fill; the back takes the
    hair above it (above the jaw, fading out over HAIR_FADE below) where its height passes BACK_BLEND.
    """
    photo = extend_beyond(image, region, max(2, int(round(0.02 * face.height()))))
    blurred = blur_within(photo, region, fill_blur * face.height())
    hair = hair_above(blurred, region, points, HAIR_INSET * face.height())
    jaw = float(face.points[face.oval, 1].max())
    above_jaw = np.clip((jaw - points[:, 1]) / (HAIR_FADE * face.height()) + 1.0, 0.0, 1.0)
    return head_colors(photo, blurred, points, faces, is_back, face.points, on_face=on_face,
                       back_share=np.clip(back_height / BACK_BLEND, 0.0, 1.0), back_colors=(hair, above_jaw))


def edge_notes(region: np.ndarray, what: str) -> list[str]:
    """One-line notes for a head region (H, W) bool cut by the photo's top, left or right edge (its bottom may be)."""
    cut = [side for side, line in (("top", region[0]), ("left", region[:, 0]), ("right", region[:, -1])) if line.any()]
    if not cut:
        return []
    return [f"{what}: the head reaches the photo's {' and '.join(cut)} edge, so the mesh is cut flat there; "
            "a photo with space around the head gives a rounder one"]


def _to_scene(points, faces, colors, height):
    """The pixel-space head as a ``Mesh``: y up, ``height`` units tall, centred in x and y; and to_photo."""
    top, bottom = points[:, 1].min(), points[:, 1].max()
    scale = height / float(bottom - top)
    offset = np.array([(points[:, 0].min() + points[:, 0].max()) / 2, (top + bottom) / 2])
    verts = np.column_stack([(points[:, 0] - offset[0]) * scale, (offset[1] - points[:, 1]) * scale,
                             points[:, 2] * scale])
    mesh = Mesh(verts=torch.tensor(verts, dtype=torch.float32), faces=torch.from_numpy(faces.astype(np.int64)),
                colors=torch.from_numpy(np.clip(colors, 0, 1)))
    return mesh, (scale, offset)
