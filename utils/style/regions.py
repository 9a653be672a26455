"""Head regions for the style loss, in the spirit of STROTSS's region guidance: the content head's pixels are
matched to the exemplar's head (face, hair, neck), not to its background, and the stylized views keep a plain
background.

- content: the render's footprint, every pixel that differs from the background colour rendering.py used
  (holes such as the whites of the eyes filled);
- exemplar: the hull of its 68 landmarks grown outward, upward (hair) and downward (neck), in the face's own
  frame (eye line as the horizontal), less the painting's background inside it (``painted_background``: the
  doll's roses beside her cheek, the sky beside Raphael's beret), so that the output's hair is not matched to
  them.

Parts (STROTSS's spatial guidance): both heads are cut into the same ``REGIONS`` from their 68 landmarks
(``part_labels``), and each part of the output takes its style only from the exemplar's same part
(``part_style_targets``, ``part_samples``, ``part_style_loss``): the exemplar's roses stay in its hair's
counterpart, its skin tones on the skin. A part the exemplar lacks (fewer than ``MIN_STYLE_SAMPLES``) is matched
to the exemplar's whole head instead.
"""
from __future__ import annotations

from typing import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.spatial import cKDTree
from torch import Tensor

from utils.style.strotss import FeatureNetwork, Layers, StrotssLosses, StyleTarget, sample_positions

BACKGROUND_TOLERANCE = 0.02  # colour distance (RGB in [0, 1]) under which a pixel is the render's background
GROW_SIDES = 0.25  # the exemplar's head: hull widened by this share of the face width on each side,
GROW_UP = 0.8  # raised by this share of the brow-to-chin height (hair),
GROW_DOWN = 0.35  # and lowered by this share below the jaw (neck)
FEATHER = 2  # pixels of soft edge when the background is put back
# the painting's background inside the grown head (``painted_background``), judged on the exemplar at this size:
BACKGROUND_SIZE = 160  # pixels along its longer side
HAIR_BAND = (0.3, 0.5)  # hair seen for sure: a band this far above the brows (shares of brow-to-chin height),
TEMPLES = (1.15, 1.35)  # and a ring round the face above the brows (the landmarks' hull scaled by these)
FRAME = 0.04  # background seen for sure: the image's frame this wide below the brows, and what lies outside the head
NEIGHBOURS = 20  # a pixel's colour distance to a seed: the mean to its nearest this many seed pixels (Lab, 8 bit)
BACKGROUND_MARGIN = 4.0  # background where nearer the frame than the hair by more than this

REGIONS = ("skin", "eyes", "nose", "lips", "hair", "neck")  # the parts' order in every (.., R, H, W) mask
REGION_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # each part's style loss is weighted by this times its samples
FOREHEAD = 0.3  # skin: the jaw and brows' hull with the brows raised by this share of the brow-to-chin height
FEATURE_GROWTH = 1.2  # eyes (with brows), nose and lips: their landmarks' hulls scaled by this about their centres
NECK_SIDES = 0.1  # neck and clothes: below the jaw from its points 4 to 12 and, at that height, this many face
#                   widths out to each side (narrow: hair hanging beside the neck stays hair)
MIN_RESULT_SAMPLES = 16  # an output part with fewer samples in some image is left out of the style loss
MIN_STYLE_SAMPLES = 32  # an exemplar part with fewer samples takes the exemplar's whole head instead


def content_footprint(images: Tensor, background: Sequence[float]) -> Tensor:
    """Pixels of rendered views that are not background: images (K, 3, S, S), background (3,) -> (K, 1, S, S) float."""
    colour = torch.as_tensor(background, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    foreground = ((images - colour).abs().amax(1) > BACKGROUND_TOLERANCE).cpu().numpy()
    filled = np.stack([ndimage.binary_fill_holes(mask) for mask in foreground])
    return torch.from_numpy(filled).float().unsqueeze(1).to(images.device)


def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face's own frame from 68 landmarks (68, 2) pixel (x, y): (centre (2,), axes (2, 2) whose rows are
    the unit "across" (outer eye corners) and "down" directions, the points in that frame (68, 2)).
    Pixel = centre + local @ axes."""
    points = np.asarray(landmarks, np.float64)
    across = points[45] - points[36]  # outer eye corners: the face's horizontal
    across /= np.linalg.norm(across) + 1e-9
    down = np.array([-across[1], across[0]])  # image y grows downwards
    centre = points.mean(0)
    axes = np.stack([across, down])
    return centre, axes, (points - centre) @ axes.T


def _brows_and_height(local: np.ndarray) -> tuple[float, float]:
    """The brows' top and the brow-to-chin height of 68 landmarks in the face's frame (``face_frame``)."""
    brows = local[17:27, 1].min()
    return brows, local[8, 1] - brows


def head_polygon(landmarks: np.ndarray) -> np.ndarray:
    """The exemplar's head outline from its 68 landmarks (68, 2) pixel (x, y): (N, 2) convex hull points."""
    centre, axes, local = face_frame(landmarks)
    width = np.ptp(local[:17, 0])
    brows, height = _brows_and_height(local)
    left, right = local[:, 0].min() - GROW_SIDES * width, local[:, 0].max() + GROW_SIDES * width
    top, bottom = brows - GROW_UP * height, local[:, 1].max() + GROW_DOWN * height
    grown = [local, [[left, 0.0], [right, 0.0], [0.7 * left, top], [0.7 * right, top], [0.0, top],
                     [0.6 * left, bottom], [0.6 * right, bottom]]]
    local = np.concatenate(grown)
    hull = cv2.convexHull(local.astype(np.float32))[:, 0].astype(np.float64)
    return centre + hull @ axes


def _convex_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) bool: inside the convex polygon (N, 2) pixel (x, y)."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, np.round(polygon).astype(np.int32), 1)
    return mask > 0


def head_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) float32 mask of the exemplar's head (``head_polygon``) in [0, 1]."""
    return _convex_mask(head_polygon(landmarks), height, width).astype(np.float32)


def _scaled_hull_mask(points: np.ndarray, scale: float, height: int, width: int) -> np.ndarray:
    """(height, width) bool: inside the convex hull of points (N, 2) pixel (x, y) scaled about their mean."""
    return _convex_mask(_grown_hull(points, scale), height, width)


def hair_mask(landmarks: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The exemplar's head (H, W) (``exemplar_head``) without its face (the hull of its 68 landmarks, grown by a
    tenth about their centre): hair, ears, neck; what the back of a head takes its style from. (H, W) float32."""
    face = _scaled_hull_mask(np.asarray(landmarks, np.float64), 1.1, *head.shape)
    return np.asarray(head, np.float32) * ~face


def painted_background(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The painting's background inside the exemplar's grown head (``head_mask``): (H, W) bool, from the image
    (H, W, 3) RGB in [0, 1] and its landmarks (68, 2) pixel (x, y).

    A hair pixel (``part_labels``) is background when its colour lies nearer the colours of the image's frame
    (below the brows: hair at the top of a cropped painting is hair) and of what lies outside the head than to
    the hair's colours (a band above the forehead and a ring round the temples), by ``BACKGROUND_MARGIN``, and
    it connects to that frame or outside: roses or sky beside the face go, hair hanging down to the frame and
    a beret's colours stay. Judged on a copy ``BACKGROUND_SIZE`` pixels long (Lab, 8 bit), about 0.05 s."""
    height, width = image.shape[:2]
    scale = BACKGROUND_SIZE / max(height, width)
    small = cv2.resize((np.clip(image, 0, 1) * 255).astype(np.uint8), (round(width * scale), round(height * scale)),
                       interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    points = np.asarray(landmarks, np.float64) * scale
    rows, cols = lab.shape[:2]
    labels = part_labels(points, head_mask(points, rows, cols)).numpy()
    hair = labels == REGIONS.index("hair")
    centre, axes, local = face_frame(points)
    brows, height_face = _brows_and_height(local)
    low, high = (brows - share * height_face for share in HAIR_BAND)
    band = np.array([[local[36, 0], low], [local[45, 0], low], [local[45, 0], high], [local[36, 0], high]])
    band_mask = _convex_mask(centre + band @ axes, rows, cols)
    pixels = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), -1)  # (rows, cols, 2) pixel (x, y)
    above_brows = (pixels - centre) @ axes[1] < local[17:27, 1].mean()
    temples = _scaled_hull_mask(points, TEMPLES[1], rows, cols) & ~_scaled_hull_mask(points, TEMPLES[0], rows, cols)
    hair_seed = hair & (band_mask | (temples & above_brows))
    edge = max(2, round(FRAME * BACKGROUND_SIZE))
    frame = np.ones((rows, cols), bool)
    frame[edge:-edge, edge:-edge] = False
    outside = labels < 0
    background_seed = (frame & hair & ~hair_seed & ~above_brows) | outside
    if hair_seed.sum() < NEIGHBOURS or background_seed.sum() < NEIGHBOURS:
        return np.zeros((height, width), bool)
    to_hair, to_background = (cKDTree(lab[seed]).query(lab[hair], k=NEIGHBOURS)[0].mean(1)
                              for seed in (hair_seed, background_seed))
    background = np.zeros((rows, cols), np.uint8)
    background[hair] = to_hair > to_background + BACKGROUND_MARGIN
    background = cv2.medianBlur(background, 5) > 0  # specks between strands stay hair
    pieces, _ = ndimage.label(background)
    touching = np.unique(pieces[background & (frame | ndimage.binary_dilation(outside))])
    background = np.isin(pieces, touching[touching > 0]).astype(np.uint8)
    return cv2.resize(background, (width, height), interpolation=cv2.INTER_NEAREST) > 0


def exemplar_head(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The exemplar's head: ``head_mask`` less its ``painted_background``. image (H, W, 3) RGB in [0, 1],
    landmarks (68, 2) pixel (x, y) -> (H, W) float32 in {0, 1}."""
    head = head_mask(landmarks, *image.shape[:2])
    return head * ~painted_background(image, landmarks)


def _grown_hull(local, growth=FEATURE_GROWTH):
    """Convex hull of points (N, 2) scaled by ``growth`` about their mean: (M, 2)."""
    middle = local.mean(0)
    hull = cv2.convexHull(local.astype(np.float32))[:, 0].astype(np.float64)
    return middle + growth * (hull - middle)


def part_polygons(landmarks: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The face's parts as polygons in pixel (x, y), from 68 landmarks (68, 2): {name: list of (N, 2)} for
    "skin" (the face's outline: jaw and raised brows), "eyes" (each eye with its brow), "nose", "lips" and
    "neck" (below the jaw and beside it, down to far outside the image; not convex)."""
    centre, axes, local = face_frame(landmarks)
    height, width = _brows_and_height(local)[1], np.ptp(local[:17, 0])
    forehead = local[17:27] - [0.0, FOREHEAD * height]
    jaw = local[4:13]
    below = local[:, 1].max() + 10 * height
    neck = np.concatenate([jaw, [[jaw[-1, 0] + NECK_SIDES * width, jaw[-1, 1]],
                                 [jaw[-1, 0] + NECK_SIDES * width, below], [jaw[0, 0] - NECK_SIDES * width, below],
                                 [jaw[0, 0] - NECK_SIDES * width, jaw[0, 1]]]])
    local_parts = {"skin": [_grown_hull(np.concatenate([local[:17], forehead]), 1.0)],
                   "eyes": [_grown_hull(local[np.r_[17:22, 36:42]]), _grown_hull(local[np.r_[22:27, 42:48]])],
                   "nose": [_grown_hull(local[27:36])], "lips": [_grown_hull(local[48:60])], "neck": [neck]}
    return {name: [centre + polygon @ axes for polygon in polygons] for name, polygons in local_parts.items()}


def part_labels(landmarks: np.ndarray, head: np.ndarray) -> Tensor:
    """Each head pixel's part: landmarks (68, 2) pixel (x, y), head (H, W) mask (> 0.5 inside) -> (H, W) int64,
    the index in ``REGIONS``, -1 outside the head.

    The parts partition the head: hair is the head outside the face and the neck; the face's outline is skin
    but where the eyes, nose and lips lie (drawn in that order over it, so each pixel has one part)."""
    head = np.asarray(head) > 0.5
    labels = np.full(head.shape, REGIONS.index("hair"), np.int32)
    polygons = part_polygons(landmarks)
    for name in ("neck", "skin", "eyes", "nose", "lips"):
        for polygon in polygons[name]:
            cv2.fillPoly(labels, [np.round(polygon).astype(np.int32)], REGIONS.index(name))
    labels[~head] = -1
    return torch.from_numpy(labels).long()


def part_masks(landmarks: np.ndarray, head: np.ndarray) -> Tensor:
    """``part_labels`` as masks: (R, H, W) float32, one per ``REGIONS``; they sum to the head (one part a pixel)."""
    labels = part_labels(landmarks, head)
    return (labels == torch.arange(len(REGIONS)).view(-1, 1, 1)).float()


def labels_of(masks: Tensor) -> Tensor:
    """Part masks (B, R, H, W) (soft after resizing or warping) -> (B, H, W) int64: each pixel's strongest part,
    -1 where the parts together cover less than half of it."""
    labels = masks.argmax(1)
    return torch.where(masks.sum(1) > 0.5, labels, torch.full_like(labels, -1))


@dataclass
class PartSamples:
    """Where images are sampled, part by part: positions (B, N, 2) pixel (x, y), each item's own; counts: R ints
    (``REGIONS``' order) that add up to N, the samples of each part lying one after another along N (0: that
    part is left out)."""

    positions: torch.Tensor
    counts: tuple

    def slices(self) -> list[tuple[int, slice]]:
        """(part index, slice along N) of every part that has samples."""
        starts = np.cumsum([0, *self.counts])
        return [(r, slice(int(starts[r]), int(starts[r + 1]))) for r, count in enumerate(self.counts) if count]


def part_samples(masks: Tensor, count: int, generator: torch.Generator,
                 minimum: int = MIN_RESULT_SAMPLES) -> PartSamples:
    """About ``count`` of STROTSS's jittered-grid positions per image, shared among the parts in proportion to
    their areas, and the same number of each part in every image (B items): masks (B, R, H, W) -> ``PartSamples``.

    A part gets at least ``minimum`` samples, or none when some image has fewer grid positions inside it."""
    batch, parts, height, width = masks.shape
    grid = sample_positions(height, width, height * width, generator)  # (G, 2), in a random order
    labels = labels_of(masks.detach().cpu())[:, grid[:, 1].long(), grid[:, 0].long()]  # (B, G)
    inside = labels.unsqueeze(1) == torch.arange(parts).view(1, -1, 1)  # (B, R, G)
    available = inside.sum(2)  # (B, R)
    share = available.float().mean(0) / available.sum(1).float().mean().clamp(min=1)
    counts = [int(min(max(round(count * float(s)), minimum), int(a))) for s, a in zip(share, available.amin(0))]
    counts = tuple(c if c >= minimum else 0 for c in counts)
    positions = [torch.cat([grid[inside[b, r].nonzero()[:counts[r], 0]] for r in range(parts)] if parts else [grid[:0]])
                 for b in range(batch)]
    return PartSamples(torch.stack(positions).to(masks.device), counts)


def masked_style_target(strotss: StrotssLosses, features: Layers, image_size: Sequence[int], positions: Tensor,
                        generator: torch.Generator, covariance: str, search_rank: int) -> StyleTarget:
    """``strotss.style_target`` of style features (B, C_l, H_l, W_l) from the samples at positions (N, 2) or
    (B, N, 2) only (``strotss``: the module of the device, ``utils.style.stylize.strotss_for``).

    The hypercolumns are sampled first and laid out as a 1 x N "image" per layer, from which ``style_target``
    then draws all N (its pixel centres fall exactly on the samples)."""
    count = positions.shape[-2]
    layers = strotss.hypercolumns(features, positions, image_size)
    strips = [layer.transpose(1, 2).unsqueeze(2).contiguous() for layer in layers]  # (B, C, 1, N)
    return strotss.style_target(strips, (1, count), count, generator, covariance, search_rank)


@dataclass
class PartTargets:
    """The exemplar's style statistics part by part (B items): targets, R ``StyleTarget``s in ``REGIONS``' order;
    fallback, R bools (True: the part was too small in the exemplar and its target is the whole head's);
    weights, R floats."""

    targets: list
    fallback: tuple
    weights: tuple

    def repeat(self, times: int) -> PartTargets:
        """The same targets repeated along the batch: (B, ...) -> (times * B, ...)."""
        return PartTargets([target.repeat(times) for target in self.targets], self.fallback, self.weights)


def part_style_targets(strotss: StrotssLosses, features: Layers, image_size: Sequence[int], masks: Tensor,
                       samples: int, generator: torch.Generator, covariance: str = "full", search_rank: int = 0,
                       weights: Sequence[float] = REGION_WEIGHTS, minimum: int = MIN_STYLE_SAMPLES) -> PartTargets:
    """The style targets of each part of the exemplar: features (B, C_l, H_l, W_l) of B exemplar images of
    ``image_size`` (H, W), their part masks (B, R, H, W) (``part_masks``); about ``samples`` samples shared among
    the parts. A part with fewer than ``minimum`` samples in some image takes the whole head's target.
    Returns ``PartTargets``.

    Example (a 3D pass: K rendered views, one exemplar)::

        targets = part_style_targets(strotss, network(style), style.shape[-2:], style_masks, 2048, generator)
        loss = guided_style_loss(strotss, network, views, view_masks, targets.repeat(K), 1024, generator)
    """
    options = (generator, covariance, search_rank)
    found = part_samples(masks, samples, generator, minimum)
    targets = {r: masked_style_target(strotss, features, image_size, found.positions[:, part], *options)
               for r, part in found.slices()}
    if len(targets) < len(REGIONS):
        head = masks.sum(1, keepdim=True).clamp(max=1)
        if not head.flatten(1).amax(1).gt(0.5).all():  # no head at all: the whole image, as ``positions_in``
            head = torch.ones_like(head)
        head = part_samples(head, samples, generator, minimum=1)
        whole = masked_style_target(strotss, features, image_size, head.positions, *options)
        targets = {r: targets.get(r, whole) for r in range(len(REGIONS))}
    return PartTargets([targets[r] for r in range(len(REGIONS))],
                       tuple(count == 0 for count in found.counts), tuple(weights))


def part_style_loss(strotss: StrotssLosses, columns: Sequence[Tensor], samples: PartSamples, targets: PartTargets,
                    color_weight: float = 1.0) -> Tensor:
    """STROTSS's style loss part by part: each part's result samples against its own target, weighted by the
    part's weight times its samples (so with equal weights every sample counts as much as without parts).

    columns: list of (B, N, C_l) hypercolumns at ``samples.positions`` (``PartSamples``); targets: ``PartTargets``
    of B items. Returns (B,)."""
    total, norm = 0.0, 0.0
    for r, part in samples.slices():
        weight = targets.weights[r] * (part.stop - part.start)
        total = total + weight * strotss.style_loss([c[:, part] for c in columns], targets.targets[r], color_weight)
        norm += weight
    return total / norm if norm else columns[0].new_zeros(len(columns[0]))


def guided_style_loss(strotss: StrotssLosses, network: FeatureNetwork, images: Tensor, masks: Tensor,
                      targets: PartTargets, count: int, generator: torch.Generator,
                      color_weight: float = 1.0) -> Tensor:
    """The part-guided style loss of images (B, 3, H, W) whose parts are masks (B, R, H, W), against
    ``PartTargets`` of B items, from about ``count`` samples per image: (B,)."""
    samples = part_samples(masks, count, generator)
    columns = strotss.network_hypercolumns(network, images, samples.positions)
    return part_style_loss(strotss, columns, samples, targets, color_weight)


def shared_mask(masks: Tensor, size: int | Sequence[int]) -> Tensor:
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
    """``masked_style_target`` with up to ``samples`` samples drawn inside mask (H, W) bool, shared by the items."""
    positions = positions_in(mask, samples, generator)
    return masked_style_target(strotss, features, image_size, positions, generator, covariance, search_rank)


def plain_background(images: Tensor, footprint: Tensor, background: Sequence[float]) -> Tensor:
    """images (K, 3, S, S) with ``background`` (3,) outside footprint (K, 1, S, S) (softened by ``FEATHER`` px)."""
    soft = F.avg_pool2d(footprint, 2 * FEATHER + 1, 1, FEATHER, count_include_pad=False) if FEATHER else footprint
    colour = torch.as_tensor(background, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return images * soft + colour * (1 - soft)
