"""Head regions for the style loss, in the spirit of STROTSS's region guidance: the content head's pixels are
matched to the exemplar's head (face, hair, neck), not to its background, and the stylized views keep a plain
background.

- content: the render's footprint, every pixel that differs from the background colour rendering.py used
  (holes such as the whites of the eyes filled);
- exemplar: the hull of its 68 landmarks grown outward, upward (hair) and downward (neck), in the face's own
  frame (eye line as the horizontal).
"""
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from utils.style.strotss import Layers, StrotssLosses, StyleTarget, sample_positions

BACKGROUND_TOLERANCE = 0.02  # colour distance (RGB in [0, 1]) under which a pixel is the render's background
GROW_SIDES = 0.25  # the exemplar's head: hull widened by this share of the face width on each side,
GROW_UP = 0.8  # raised by this share of the brow-to-chin height (hair),
GROW_DOWN = 0.35  # and lowered by this share below the jaw (neck)
FEATHER = 2  # pixels of soft edge when the background is put back


def content_footprint(images: Tensor, background: Sequence[float]) -> Tensor:
    """Pixels of rendered views that are not background: images (K, 3, S, S), background (3,) -> (K, 1, S, S) float."""
    colour = torch.as_tensor(background, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    foreground = ((images - colour).abs().amax(1) > BACKGROUND_TOLERANCE).cpu().numpy()
    filled = np.stack([ndimage.binary_fill_holes(mask) for mask in foreground])
    return torch.from_numpy(filled).float().unsqueeze(1).to(images.device)


def head_polygon(landmarks: np.ndarray) -> np.ndarray:
    """The exemplar's head outline from its 68 landmarks (68, 2) pixel (x, y): (N, 2) convex hull points."""
    points = np.asarray(landmarks, np.float64)
    across = points[45] - points[36]  # outer eye corners: the face's horizontal
    across /= np.linalg.norm(across) + 1e-9
    down = np.array([-across[1], across[0]])  # image y grows downwards
    centre = points.mean(0)
    local = (points - centre) @ np.stack([across, down], 1)  # (68, 2) in the face frame
    width = np.ptp(local[:17, 0])
    height = local[8, 1] - local[17:27, 1].min()  # brows to chin
    left, right = local[:, 0].min() - GROW_SIDES * width, local[:, 0].max() + GROW_SIDES * width
    top, bottom = local[17:27, 1].min() - GROW_UP * height, local[:, 1].max() + GROW_DOWN * height
    grown = [local, [[left, 0.0], [right, 0.0], [0.7 * left, top], [0.7 * right, top], [0.0, top],
                     [0.6 * left, bottom], [0.6 * right, bottom]]]
    local = np.concatenate(grown)
    hull = cv2.convexHull(local.astype(np.float32))[:, 0].astype(np.float64)
    return centre + hull @ np.stack([across, down])


def head_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) float32 mask of the exemplar's head (``head_polygon``) in [0, 1]."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, np.round(head_polygon(landmarks)).astype(np.int32), 1)
    return mask.astype(np.float32)


def hair_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) float32 mask of the exemplar's head without its face (the hull of its 68 landmarks, grown
    by a tenth about their centre): hair, ears, neck; what the back of a head takes its style from."""
    points = np.asarray(landmarks, np.float64)
    centre = points.mean(0)
    grown = centre + 1.1 * (points - centre)
    face = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(face, np.round(cv2.convexHull(grown.astype(np.float32))[:, 0]).astype(np.int32), 1)
    return head_mask(landmarks, height, width) * (1 - face.astype(np.float32))


def shared_mask(masks: Tensor, size: Sequence[int]) -> Tensor:
    """Pixels inside every view's mask: (K, 1, H, W) -> (size, size) bool (positions are shared by the views)."""
    resized = F.interpolate(masks.float(), size=size, mode="bilinear", align_corners=False)
    return resized.amin(0)[0] > 0.5


def positions_in(mask: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """Up to ``count`` of STROTSS's jittered-grid positions that fall inside mask (H, W) bool: (N, 2) pixel (x, y).
    An empty mask gives positions from the whole image."""
    height, width = mask.shape
    positions = sample_positions(height, width, height * width, generator)
    inside = mask.cpu()[positions[:, 1].long(), positions[:, 0].long()]
    return (positions[inside] if inside.any() else positions)[:count]


def head_style_target(strotss: StrotssLosses, features: Layers, image_size: Sequence[int], mask: Tensor, samples: int,
                      generator: torch.Generator, covariance: str, search_rank: int) -> StyleTarget:
    """``strotss.style_target`` of the style features with its samples drawn inside mask (H, W) bool only
    (``strotss``: the module of the device, ``utils.style.stylize.strotss_for``).

    The masked hypercolumns are sampled first and laid out as a 1 x N "image" per layer, from which
    ``style_target`` then draws all N (its pixel centres fall exactly on the samples)."""
    positions = positions_in(mask, samples, generator)
    layers = strotss.hypercolumns(features, positions, image_size)
    strips = [layer.transpose(1, 2).unsqueeze(2).contiguous() for layer in layers]  # (B, C, 1, N)
    return strotss.style_target(strips, (1, len(positions)), len(positions), generator, covariance, search_rank)


def plain_background(images: Tensor, footprint: Tensor, background: Sequence[float]) -> Tensor:
    """images (K, 3, S, S) with ``background`` (3,) outside footprint (K, 1, S, S) (softened by ``FEATHER`` px)."""
    soft = F.avg_pool2d(footprint, 2 * FEATHER + 1, 1, FEATHER, count_include_pad=False) if FEATHER else footprint
    colour = torch.as_tensor(background, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return images * soft + colour * (1 - soft)
