"""Step 4a: deformable style transfer of K content views at once (DST + STROTSS, views as the batch).

Each view's output is a Laplacian pyramid (optimised from coarse to fine over ``scales``), warped by a
thin-plate spline driven by that view's landmark displacements. Per view: STROTSS style loss on the warped
and the unwarped output, STROTSS content loss, warp loss (displaced landmarks to their targets), total
variation of the warp field. Across views: the colours of the warped outputs at the warped projections of
every vertex seen in two views agree, and (with the cameras) those projections stay on each other's epipolar
lines, so that step 4b can triangulate them without a residual. With head regions (utils/style/regions.py) the
style loss samples the output only inside the content's (warped) footprint and the exemplar only inside its head,
and the background outside the footprint is put back plain at the end. With parts as well, each part of the head
(skin, eyes, nose, lips, hair, neck: ``regions.REGIONS``) takes its style only from the exemplar's same part, as
STROTSS's spatial guidance does.
"""
import itertools
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from utils.geometry.epipolar import fundamental_matrix, sampson_distance
from utils.io.images import pixel_to_grid
from utils.style.palette import matched_by_part
from utils.style.pyramid import laplacian_pyramid, synthesize
from utils.style import strotss as strotss_reference, strotss_fast
from utils.style.strotss import FeatureNetwork, StrotssLosses
from utils.style.regions import (content_footprint, head_style_target, part_masks, part_samples, part_style_loss,
                                 part_style_targets, plain_background, positions_in, shared_mask)
from utils.style.warp import LandmarkWarp, warp_smoothness

LOSS_NAMES = ("total", "style", "content", "warp", "tv", "consistency", "epipolar")


@dataclass
class StylizeSettings:
    """Parameters of the joint optimisation; the defaults are RRPS's (run.py's flags and profiles come from here)."""

    image_size: int = 512  # final side in pixels
    scales: int = 3  # coarse-to-fine scales, each half the next
    iterations: int = 150  # per scale
    pyramid_levels: int = 5
    style_weight: float = 20.0
    content_weight: float = 0.0
    warp_weight: float = 5.0
    tv_weight: float = 30.0
    consistency_weight: float = 20.0
    # warped vertex projections kept on each other's epipolar lines (needs cameras; 50k-vertex RRPS pair, CPU
    # profile: reconstruction's median reprojection 0.72 -> 0.21 px, flips 0.68 -> 0.21% at 3; landmark ratio +0.01)
    epipolar_weight: float = 3.0
    optimizer: Literal["adadelta", "adam"] = "adadelta"
    learning_rate: float = 1.0
    warp_lr_factor: float = 10.0
    result_samples: int = 2048  # hypercolumns sampled from each output per iteration
    style_samples: int = 5000  # hypercolumns sampled from each style exemplar per scale
    covariance: Literal["full", "layers"] = "full"  # "full" hypercolumn covariance or per-"layers" blocks (cheaper)
    search_rank: int = 256  # CPU only: REMD neighbours searched in this many principal directions (0: all, exact)
    border_points_per_side: int = 16  # fixed TPS points along each image edge
    field_size: int = 128  # side of the grid the warp field is evaluated on
    checkpoint_every: int = 50  # iterations between checkpoint images
    regions: bool = True  # style loss from head to head (content footprint, exemplar's head); plain background
    parts: bool = True  # with regions: each part of the head (skin, eyes, nose, lips, hair, neck) from its own part
    part_palette: float = 0.75  # share of the way each part's colours end matched to the exemplar's part (0: none)
    #                             with parts, by histogram (utils/style/palette.py; STROTSS has none). First 4 dev
    #                             pairs, bench_quality, 0 / 0.5 / 0.75 / 1: worst part 0.747 / 0.442 / 0.304 / 0.212,
    #                             whole-head colour 0.171 / 0.163 / 0.169 / 0.183, texture 0.733 / 0.728 / 0.728 /
    #                             0.729 (the heads' parts differ in share, so matching each part moves the whole head)
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ViewInputs:
    """One mesh's content views and a style exemplar prepared for each view (K views, L landmarks, V vertices).

    content: (K, 3, S, S) in [0, 1]; style: (K, 3, Hs, Ws) exemplar turned to each view; landmarks,
    targets: (K, L, 2) pixel (x, y); verts2d: (V, K, 2) pixel (x, y); visible: (V, K) bool.
    Head regions (optional): content_mask (K, 1, S, S) the render's footprint; style_mask (K, 1, Hs, Ws) the
    exemplar's head, turned like ``style``; background (3,) the render's background colour.
    Parts (optional, with the regions): content_parts (K, R, S, S) and style_parts (K, R, Hs, Ws), the masks of
    ``regions.REGIONS`` (``regions.part_masks``) of the content views and of the turned exemplars.
    projections (optional): (K, 3, 4) the views' world-to-pixel cameras, for the epipolar term.
    """

    content: Tensor
    style: Tensor
    landmarks: Tensor
    targets: Tensor
    verts2d: Tensor
    visible: Tensor
    content_mask: Optional[Tensor] = None
    style_mask: Optional[Tensor] = None
    background: Optional[tuple] = None
    content_parts: Optional[Tensor] = None
    style_parts: Optional[Tensor] = None
    projections: Optional[Tensor] = None

    @property
    def has_parts(self) -> bool:
        """Whether the head regions and the part masks of both sides are all given."""
        return self.has_regions and self.content_parts is not None and self.style_parts is not None

    @property
    def has_regions(self) -> bool:
        """Whether the head regions (footprint, exemplar's head, background) are all given."""
        return self.content_mask is not None and self.style_mask is not None and self.background is not None


@dataclass
class StylizeResult:
    """What the optimisation produced.

    stylized, unwarped: (K, 3, S, S) in [0, 1] at the content views' size S (optimised at settings.image_size
    and resized when that is smaller); verts2d_warped: (V, K, 2); landmarks_warped: (K, L, 2);
    history: {loss name: list of floats per iteration}; checkpoints: list of (label, (K, 3, s, s) warped images).
    """

    stylized: Tensor
    unwarped: Tensor
    verts2d_warped: Tensor
    landmarks_warped: Tensor
    history: dict
    checkpoints: list = field(default_factory=list)


class ConsistencyTerm:
    """Colour agreement between views at the warped projections of vertices visible in two views.

    verts2d: (V, K, 2), visible: (V, K) bool. Only vertices visible in at least two views are tracked.
    """

    def __init__(self, verts2d: Tensor, visible: Tensor) -> None:
        shared = visible.sum(1) >= 2
        self.points = verts2d[shared].transpose(0, 1).contiguous()  # (K, P, 2)
        pairs = torch.tensor(list(itertools.combinations(range(visible.shape[1]), 2)), dtype=torch.long,
                             device=visible.device)
        self.first, self.second = pairs.reshape(-1, 2).unbind(1)
        seen = visible[shared].T  # (K, P)
        self.mask = (seen[self.first] & seen[self.second]).float()  # (pairs, P)

    def __call__(self, warped: Tensor, moved_points: Tensor, image_size: int) -> Tensor:
        """Mean absolute colour difference over view pairs and shared vertices (a scalar).

        warped: (K, 3, s, s); moved_points: (K, P, 2) full-resolution pixels.
        """
        if self.mask.sum() == 0:
            return warped.new_zeros(())
        grid = pixel_to_grid(moved_points, image_size, image_size).unsqueeze(1)  # (K, 1, P, 2)
        colors = F.grid_sample(warped, grid, mode="bilinear", padding_mode="border", align_corners=False)
        colors = colors.squeeze(2)  # (K, 3, P)
        difference = (colors[self.first] - colors[self.second]).abs().mean(1)  # (pairs, P)
        return (difference * self.mask).sum() / self.mask.sum()


class EpipolarTerm:
    """Mean Sampson distance (pixels) between the warped projections of each vertex in every pair of views that
    see it: how far the views' warps are from moving one 3D surface.

    consistency: the ``ConsistencyTerm`` whose tracked vertices, view pairs and mask it shares;
    projections: (K, 3, 4) the views' world-to-pixel cameras.
    """

    def __init__(self, consistency: ConsistencyTerm, projections: Tensor) -> None:
        self.mask = consistency.mask  # (pairs, P)
        self.pairs = [(fundamental_matrix(projections[a], projections[b]), a, b)
                      for a, b in zip(consistency.first.tolist(), consistency.second.tolist())]

    def __call__(self, moved_points: Tensor) -> Tensor:
        """moved_points: (K, P, 2) full-resolution pixels -> a scalar."""
        if self.mask.sum() == 0:
            return moved_points.new_zeros(())
        distances = torch.stack([sampson_distance(fundamental, moved_points[a], moved_points[b])
                                 for fundamental, a, b in self.pairs])
        return (distances * self.mask).sum() / self.mask.sum()


def _resize(images, size):
    """Bilinear (antialiased) resize of (B, C, H, W) to ``size`` = (H', W')."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def _style_size(style, side):
    """(H, W) of the style exemplar with its longer edge at ``side`` pixels."""
    height, width = style.shape[-2:]
    factor = side / max(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


def strotss_for(device: Union[str, torch.device]) -> StrotssLosses:
    """STROTSS's losses for ``device``: ``strotss_fast`` on the CPU (the same values, several times faster; its
    tests compare it with the reference), the plain reference ``strotss`` elsewhere (exact REMD on a GPU)."""
    return strotss_fast if torch.device(device).type == "cpu" else strotss_reference


def _make_optimizer(settings, pyramid, displacements):
    """One optimizer over all pyramid levels and the warp displacements (faster learning rate for the warp)."""
    groups = [{"params": pyramid, "lr": settings.learning_rate},
              {"params": [displacements], "lr": settings.learning_rate * settings.warp_lr_factor}]
    if settings.optimizer == "adadelta":
        return torch.optim.Adadelta(groups)
    if settings.optimizer == "adam":
        return torch.optim.Adam(groups)
    raise ValueError(f"optimizer '{settings.optimizer}' is not 'adadelta' or 'adam'")


class ScaleProblem:
    """Everything fixed while optimising at one scale: sizes, style statistics, content hypercolumn source, and
    the STROTSS module for the device (``strotss_for``)."""

    def __init__(self, inputs: ViewInputs, network: FeatureNetwork, settings: StylizeSettings, scale: int,
                 generator: torch.Generator) -> None:
        self.strotss = strotss_for(inputs.content.device)
        self.level = settings.scales - 1 - scale
        self.size = settings.image_size // 2 ** self.level
        self.content_weight = settings.content_weight * 2 ** self.level
        self.color_weight = 1.0 / max(self.content_weight, 1.0)
        regions = settings.regions and inputs.has_regions
        parts = regions and settings.parts and inputs.has_parts
        self.content_mask = _resize(inputs.content_mask, (self.size, self.size)) if regions else None
        self.content_parts = _resize(inputs.content_parts, (self.size, self.size)) if parts else None
        with torch.no_grad():
            style = _resize(inputs.style, _style_size(inputs.style, self.size))
            options = (settings.style_samples, generator, settings.covariance, settings.search_rank)
            if parts:
                style_parts = _resize(inputs.style_parts, style.shape[-2:])
                target = part_style_targets(self.strotss, network(style), style.shape[-2:], style_parts, *options)
            elif regions:
                head = shared_mask(inputs.style_mask, style.shape[-2:])
                target = head_style_target(self.strotss, network(style), style.shape[-2:], head, *options)
            else:
                target = self.strotss.style_target(network(style), style.shape[-2:], *options)
            self.target = target.repeat(2)  # warped and unwarped outputs share their view's target
            content = _resize(inputs.content, (self.size, self.size))
            self.content_features = network(content) if settings.content_weight > 0 else None


class DeformableStyleTransfer:
    """The joint optimisation of K views; ``run()`` returns a ``StylizeResult``."""

    def __init__(self, inputs: ViewInputs, network: FeatureNetwork, settings: StylizeSettings,
                 progress: bool = True) -> None:
        self.inputs, self.network, self.settings, self.progress = inputs, network, settings, progress
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.views = inputs.landmarks.shape[0]
        self.frame = inputs.content.shape[-1]  # side of the pixel frame of landmarks and vertex projections
        content = _resize(inputs.content, (settings.image_size, settings.image_size))
        self.pyramid = [level.clone().requires_grad_(True)
                        for level in laplacian_pyramid(content, settings.pyramid_levels)]
        self.displacements = torch.zeros_like(inputs.landmarks, requires_grad=True)
        self.consistency = ConsistencyTerm(inputs.verts2d, inputs.visible)
        self.epipolar = (EpipolarTerm(self.consistency, inputs.projections)
                         if settings.epipolar_weight > 0 and inputs.projections is not None else None)
        self.warp = LandmarkWarp(inputs.landmarks, self.frame, settings.border_points_per_side,
                                 settings.field_size, self.consistency.points)
        self.optimizer = _make_optimizer(settings, self.pyramid, self.displacements)
        self.history = {name: [] for name in LOSS_NAMES}
        self.checkpoints = []

    def render(self, level: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Unwarped and warped outputs at pyramid ``level``, the forward field and its inverse (the warp that samples
        them): ((K,3,s,s), (K,3,s,s), field, inverse)."""
        unwarped = synthesize(self.pyramid[level:])
        field = self.warp.displacement_field(self.displacements)
        inverse = self.warp.inverse_field(field)
        return unwarped, self.warp.warp_images(unwarped, inverse), field, inverse

    def losses(self, problem: ScaleProblem) -> dict[str, Tensor]:
        """All loss terms for one iteration: {name: scalar tensor}."""
        s, k = self.settings, self.views
        unwarped, warped, field, inverse = self.render(problem.level)
        strotss = problem.strotss
        sampled = self.result_positions(problem, inverse)
        positions = sampled if problem.content_parts is None else sampled.positions
        columns = strotss.network_hypercolumns(self.network, torch.cat([warped, unwarped]), positions)
        if problem.content_parts is None:
            style = strotss.style_loss(columns, problem.target, problem.color_weight).sum()
        else:
            style = part_style_loss(strotss, columns, sampled, problem.target, problem.color_weight).sum()
        content = warped.new_zeros(())
        if problem.content_features is not None:
            unwarped_positions = positions if positions.dim() == 2 else positions[k:]
            content_columns = strotss.hypercolumns(problem.content_features, unwarped_positions,
                                                   (problem.size,) * 2)
            content = strotss.content_loss([c[k:] for c in columns], content_columns).sum()
        moved = self.inputs.landmarks + self.displacements
        warp = (moved - self.inputs.targets).norm(dim=-1).mean(1).sum()
        tv = warp_smoothness(field, self.frame).sum()
        tracked = self.warp.move_tracked(self.displacements)
        consistency = self.consistency(warped, tracked, self.frame)
        epipolar = self.epipolar(tracked) if self.epipolar is not None else warped.new_zeros(())
        total = (s.style_weight * style + problem.content_weight * content + s.warp_weight * warp
                 + s.tv_weight * tv + s.consistency_weight * consistency + s.epipolar_weight * epipolar)
        return dict(total=total, style=style, content=content, warp=warp, tv=tv, consistency=consistency,
                    epipolar=epipolar)

    def result_positions(self, problem: ScaleProblem, inverse: Tensor) -> Tensor:
        """Where the outputs are sampled this iteration: (N, 2) pixel (x, y); with head regions only inside the
        content's footprint both unwarped and warped by the current warp (``render``'s inverse field); with parts
        a ``PartSamples`` for the 2K outputs (warped, then unwarped), each sampled in its own parts."""
        size, count = problem.size, self.settings.result_samples
        if problem.content_mask is None:
            return problem.strotss.sample_positions(size, size, count, self.generator)
        with torch.no_grad():
            if problem.content_parts is not None:
                warped = self.warp.warp_images(problem.content_parts, inverse.detach())
                return part_samples(torch.cat([warped, problem.content_parts]), count, self.generator)
            warped = self.warp.warp_images(problem.content_mask, inverse.detach())
            return positions_in(shared_mask(torch.cat([problem.content_mask, warped]), (size, size)), count,
                                self.generator)

    def step(self, problem: ScaleProblem) -> dict[str, float]:
        """One optimiser step; records and returns the loss values (floats)."""
        self.optimizer.zero_grad(set_to_none=True)
        terms = self.losses(problem)
        check_finite(terms, len(self.history["total"]) + 1)  # a NaN loss's backward can crash the process
        terms["total"].backward()
        self.optimizer.step()
        values = {name: float(value.detach()) for name, value in terms.items()}
        for name, value in values.items():
            self.history[name].append(value)
        return values

    def checkpoint(self, label: str, level: int) -> None:
        """Keep the current warped outputs (K, 3, s, s) under ``label``."""
        with torch.no_grad():
            warped = self.render(level)[1]
        self.checkpoints.append((label, warped.clamp(0, 1).cpu()))

    def run_scale(self, scale: int) -> None:
        """Optimise at one scale (0 = coarsest) with a progress bar showing the current loss."""
        problem = ScaleProblem(self.inputs, self.network, self.settings, scale, self.generator)
        bar = tqdm(range(self.settings.iterations), desc=f"scale {scale + 1}/{self.settings.scales} "
                   f"({problem.size}px)", disable=not self.progress, leave=True)
        for iteration in bar:
            values = self.step(problem)
            bar.set_postfix(loss=f"{values['total']:.4g}")
            every = self.settings.checkpoint_every
            if iteration + 1 == self.settings.iterations or (every and (iteration + 1) % every == 0):
                self.checkpoint(f"scale{scale + 1}_iter{iteration + 1:04d}", problem.level)

    def run(self) -> StylizeResult:
        """All scales, then the final outputs (at the content views' size) and the warped vertex projections."""
        for scale in range(self.settings.scales):
            self.run_scale(scale)
        with torch.no_grad():
            unwarped, warped, _, inverse = self.render(0)
            verts = self.inputs.verts2d.transpose(0, 1)  # (K, V, 2)
            verts_warped = self.warp.move_points(verts, self.displacements).transpose(0, 1)
            landmarks = self.inputs.landmarks + self.displacements
            frame = (self.frame, self.frame)
            warped, unwarped = _resize(warped, frame).clamp(0, 1), _resize(unwarped, frame).clamp(0, 1)
            if self.settings.regions and self.inputs.has_regions:
                footprint = self.inputs.content_mask
                moved = self.warp.warp_images(footprint, inverse)
                warped = plain_background(warped, moved, self.inputs.background)
                unwarped = plain_background(unwarped, footprint, self.inputs.background)
        return StylizeResult(warped, unwarped,
                             verts_warped.contiguous(),
                             landmarks.detach().clone(), self.history, self.checkpoints)


def check_finite(terms: dict[str, Tensor], iteration: int) -> None:
    """FloatingPointError naming the loss terms that are NaN or infinite, before any backward pass: backward
    through grid_sample with NaN sampling positions reads outside memory (a segfault, measured on CPU)."""
    bad = [name for name, value in terms.items() if name != "total" and not bool(torch.isfinite(value))]
    if bad or not bool(torch.isfinite(terms["total"])):
        raise FloatingPointError(f"the loss turned non-finite ({', '.join(bad) or 'total'}) at iteration "
                                 f"{iteration}; check this pair's landmarks and settings")


def stylized_part_masks(result: StylizeResult, background: Sequence[float]) -> Tensor:
    """The parts of the warped outputs (``regions.part_masks``), cut from their warped landmarks inside their
    footprint on the plain ``background`` (3,): (K, R, S, S)."""
    footprint = content_footprint(result.stylized, background)
    return torch.stack([part_masks(points, mask[0]) for points, mask in
                        zip(result.landmarks_warped.cpu().numpy(), footprint.cpu().numpy())]).to(result.stylized)


def match_part_palettes(result: StylizeResult, inputs: ViewInputs, settings: StylizeSettings) -> StylizeResult:
    """The result with each part's colours histogram-matched to the exemplar's same part, ``settings.part_palette``
    of the way (``palette.matched_by_part``; the warped outputs' parts from ``stylized_part_masks``). Unchanged
    without parts (in the settings or the inputs) or at share 0."""
    share = settings.part_palette
    if share <= 0 or not (settings.regions and settings.parts and inputs.has_parts):
        return result
    moved = stylized_part_masks(result, inputs.background)
    stylized = matched_by_part(result.stylized, moved, inputs.style, inputs.style_parts, share)
    unwarped = matched_by_part(result.unwarped, inputs.content_parts, inputs.style, inputs.style_parts, share)
    return replace(result, stylized=stylized, unwarped=unwarped)


def stylize_views(inputs: ViewInputs, network: FeatureNetwork, settings: StylizeSettings,
                  progress: bool = True) -> StylizeResult:
    """Stylize K content views jointly with their style exemplars (see ``ViewInputs``); returns a ``StylizeResult``
    (with parts, each part's palette matched to the exemplar's at the end: ``match_part_palettes``)."""
    result = DeformableStyleTransfer(inputs, network, settings, progress).run()
    return match_part_palettes(result, inputs, settings)
