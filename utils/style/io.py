"""Files of the style transfer step: its inputs, checked before any optimisation, and its outputs.

Inputs: a content folder (``utils.io.layout.ContentFolder``, written by rendering.py and correspondences.py)
and a style exemplar <style>.png|jpg with <style>.txt beside it. Outputs: a ``utils.io.layout.PairFolder``
output/<name>/<style>/ (see ``save_result``).
"""
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from utils.errors import InputError
from utils.io.files import load_json, save_json, save_npy
from utils.io.images import load_image, read_image_array, save_image
from utils.io.landmarks import load_landmarks
from utils.io.layout import ContentFolder, PairFolder, style_landmarks
from utils.geometry.triangulate import consistent_projections, projections_at_depth
from utils.rendering.cameras import load_cameras
from utils.rendering.content import RenderSettings
from utils.report.plots import save_keypoint_overlay, save_loss_curves
from utils.style.regions import content_footprint, exemplar_head, hair_mask, part_masks
from utils.style.stylize import StylizeResult, ViewInputs
from utils.style.all_round import AllRoundResult, AllRoundSettings
from utils.style.style_view import aligned_targets, rotate_exemplar

PathLike = Union[str, Path]
DEFAULT_FOV = 15.0  # degrees, when cameras.json gives none
DEFAULT_BACKGROUND = RenderSettings().background  # the render's background, when cameras.json does not record it


@dataclass
class ContentViews:
    """One mesh's K content views. images: (K, 3, S, S); landmarks: (K, 68, 2); verts2d: (V, K, 2);
    visible: (V, K) bool; azimuths, fovs: lists of K floats (degrees); background: the render's colour (3,);
    projections: (K, 3, 4) world-to-pixel cameras (None where cameras.json lists no rotation and translation)."""

    name: str
    images: torch.Tensor
    landmarks: torch.Tensor
    verts2d: torch.Tensor
    visible: torch.Tensor
    azimuths: list
    fovs: list
    background: tuple = DEFAULT_BACKGROUND
    projections: Optional[torch.Tensor] = None


@dataclass
class StyleExemplar:
    """A style image (H, W, 3) float array in [0, 1] and its 68 landmarks (68, 2) pixel (x, y)."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray

    @cached_property
    def head(self) -> np.ndarray:
        """(H, W) float: the exemplar's head without the painting's background (``regions.exemplar_head``)."""
        return exemplar_head(self.image, self.landmarks)

    @cached_property
    def hair(self) -> np.ndarray:
        """(H, W) float32: the head without the face (``regions.hair_mask``), the style of a head's back."""
        return hair_mask(self.landmarks, self.head)

    @property
    def channels_first(self) -> torch.Tensor:
        """The image as a (3, H, W) float tensor, as the 3D pass takes it."""
        return torch.from_numpy(self.image).permute(2, 0, 1).float()


def _load_array(path, what):
    """np.load with an InputError for a missing or unreadable file."""
    if not path.is_file():
        raise InputError(f"{path}: {what} not found; re-run rendering.py for this mesh")
    try:
        return np.load(path)
    except (ValueError, OSError) as err:
        raise InputError(f"{path}: unreadable ({err}); re-run rendering.py for this mesh") from None


def _require_landmarks(path, image_size, fix):
    """Landmarks at ``path`` or an InputError that says how to make them."""
    if not path.is_file():
        raise InputError(f"{path}: landmarks missing; {fix}")
    return load_landmarks(path, order="auto", image_size=image_size)


def load_content_views(folder: PathLike, device: Union[str, torch.device] = "cpu") -> ContentViews:
    """Read and check one content folder. Returns ``ContentViews``."""
    folder = ContentFolder(folder)
    cameras = load_json(folder.cameras)
    views = cameras.get("views") or []
    if not views:
        raise InputError(f"{folder.cameras}: no views listed; re-run rendering.py")
    images = [load_image(folder.view(k), device) for k in range(len(views))]
    sizes = {tuple(image.shape[-2:]) for image in images}
    if len(sizes) != 1 or len(set(next(iter(sizes)))) != 1:
        raise InputError(f"{folder}: content views must be square and of one size (found {sorted(sizes)}); "
                         "re-run rendering.py")
    size = images[0].shape[-1]
    fix = "run correspondences.py to detect content landmarks"
    landmarks = [_require_landmarks(folder.landmarks(k), size, fix) for k in range(len(views))]
    verts2d = _load_array(folder.verts2d, "vertex projections")
    visible = _load_array(folder.visible, "vertex visibility")
    if verts2d.ndim != 3 or verts2d.shape[1:] != (len(views), 2) or visible.shape != verts2d.shape[:2]:
        raise InputError(f"{folder}: verts2d.npy {verts2d.shape} / visible.npy {visible.shape} do not match "
                         f"{len(views)} views (expected (V, K, 2) and (V, K)); re-run rendering.py")
    return ContentViews(folder.name, torch.stack(images),
                        torch.tensor(np.stack(landmarks), dtype=torch.float32, device=device),
                        torch.as_tensor(verts2d, dtype=torch.float32, device=device),
                        torch.as_tensor(visible, dtype=torch.bool, device=device),
                        [float(v.get("azimuth", 0.0)) for v in views],
                        [float(v.get("fov", DEFAULT_FOV)) for v in views],
                        tuple((cameras.get("render_settings") or {}).get("background") or DEFAULT_BACKGROUND),
                        load_cameras(folder.cameras, device)[1] if all("R" in v and "T" in v for v in views) else None)


def load_style(path: PathLike) -> StyleExemplar:
    """Read and check a style exemplar and its landmarks (<style>.txt beside it). Returns ``StyleExemplar``."""
    path = Path(path)
    image = read_image_array(path)
    fix = "run correspondences.py (it detects them) or write 68 lines \"x y\""
    landmarks = _require_landmarks(style_landmarks(path), image.shape[:2], fix)
    return StyleExemplar(path.stem, image, landmarks)


def prepare_inputs(content: ContentViews, style: StyleExemplar,
                   device: Union[str, torch.device] = "cpu") -> ViewInputs:
    """The exemplar turned to each content view and its landmarks aligned to the view's: ``ViewInputs``, with
    the head regions (the content's footprint, the exemplar's head turned the same way) and both sides' parts
    (``regions.part_masks``: from the content landmarks in the footprint, from the turned exemplar's landmarks in
    its turned head). With the cameras, the content landmarks are made consistent across views: each landmark's
    positions are the projections of the one point triangulated from them (``consistent_projections``). The
    targets are too, at the content's depth (``projections_at_depth``): the turned exemplar is a flat card, and its
    landmarks triangulated as they are lie in one plane, the nose tip level with the eyes, so the reconstruction
    pressed the nose flat (hopper: 0.245 in front of the eyes in the content, 0.003 in the targets)."""
    size = content.images.shape[-1]
    head = style.head
    footprint = content_footprint(content.images, content.background)
    turned, heads, style_parts, content_parts, targets = [], [], [], [], []
    views = zip(content.azimuths, content.fovs, content.landmarks.cpu().numpy(), footprint[:, 0].cpu().numpy())
    for azimuth, fov, landmarks, inside in views:
        image, points = rotate_exemplar(style.image, style.landmarks, azimuth, fov)
        turned.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        heads.append(torch.from_numpy(rotate_exemplar(head, style.landmarks, azimuth, fov)[0]))
        style_parts.append(part_masks(points, heads[-1].numpy()))
        content_parts.append(part_masks(landmarks, inside))
        targets.append(aligned_targets(points, landmarks, size))
    targets = torch.tensor(np.stack(targets), dtype=torch.float32, device=device)
    landmarks = content.landmarks
    projections = None if content.projections is None else content.projections.to(device)
    if projections is not None and len(targets) > 1:
        landmarks = consistent_projections(landmarks, projections)
        targets = projections_at_depth(targets, landmarks, projections)
    return ViewInputs(content.images, torch.stack(turned).float().to(device), landmarks, targets,
                      content.verts2d, content.visible, footprint,
                      torch.stack(heads).unsqueeze(1).float().to(device), content.background,
                      torch.stack(content_parts).to(device), torch.stack(style_parts).to(device), projections)


def save_result(folder: PathLike, result: StylizeResult, inputs: ViewInputs, params: dict) -> None:
    """Write the step's outputs into ``folder`` (all atomically): stylized_<k>.png, unwarped_<k>.png,
    verts2d_warped.npy, intermediate/ (checkpoints, loss curves, keypoint overlays, turned exemplars),
    and params.json last. folder: a ``PairFolder`` or its path."""
    folder = PairFolder(folder)
    for label, images in result.checkpoints:
        for k, image in enumerate(images):
            save_image(folder.view_picture(label, k), image)
    save_loss_curves(folder.loss_curves, {name: values for name, values in result.history.items()
                                          if any(v != 0 for v in values)})
    for k in range(len(result.stylized)):
        save_image(folder.stylized(k), result.stylized[k])
        save_image(folder.unwarped(k), result.unwarped[k])
        save_keypoint_overlay(folder.keypoints(k), result.stylized[k],
                              {"source": inputs.landmarks[k].cpu(), "target": inputs.targets[k].cpu(),
                               "current": result.landmarks_warped[k].cpu()})
        save_image(folder.view_picture("style", k), inputs.style[k])
    save_npy(folder.verts2d_warped, result.verts2d_warped.float())
    save_json(folder.params, params)


def save_all_round(folder: PathLike, result: AllRoundResult, settings: AllRoundSettings) -> dict:
    """Write the 3D pass's pictures into the pair folder's intermediate/ (the final colours from each view it
    used, its loss curves) and return its figures for metrics.json."""
    folder = PairFolder(folder)
    save_image(folder.all_round_views, torch.cat(list(result.renders), 2))
    save_loss_curves(folder.all_round_loss, result.history, title="style all round")
    return dict(azimuths=result.azimuths, seconds=round(result.seconds, 1), settings=settings.as_dict(),
                final_loss={name: values[-1] for name, values in result.history.items() if values})
