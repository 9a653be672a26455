"""STROTSS losses (Kolkin et al., CVPR 2019) on sampled hypercolumns, batched over views: the reference.

A hypercolumn is the concatenation, at one image position, of the feature network's layers (the image
itself first). Losses compare the hypercolumns of B result images with B style targets (one per view):

- relaxed earth mover's distance (REMD) with cosine cost,
- moment matching (means and covariances),
- a colour REMD in YUV with Euclidean cost,
- the content loss: self-similarity of the result's hypercolumns against the content's.

This module writes them as the paper does, in plain differentiable torch: it runs on any device (it is what
runs on a GPU, with the exact REMD) and is the tests' oracle. ``utils/style/strotss_fast.py`` computes the same
on the CPU several times faster, with the same public functions (``StrotssLosses``, the interface both modules
provide); ``utils.style.stylize.strotss_for(device)`` picks one of the two.
"""
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from utils.io.images import pixel_to_grid

Layers = Sequence[Tensor]  # one tensor per network layer, the image itself first
FeatureNetwork = Callable[[Tensor], list]  # images (B, 3, H, W) -> layers, a list of (B, C_l, H_l, W_l)
RGB_TO_YUV = torch.tensor([[0.577350, 0.577350, 0.577350],
                           [-0.577350, 0.788675, -0.211325],
                           [-0.577350, -0.211325, 0.788675]])


def sample_positions(height: int, width: int, count: int, generator: torch.Generator,
                     max_positions: int = 128 ** 2) -> Tensor:
    """Random image positions on a jittered regular grid, as STROTSS samples its result.

    The grid has at most ``max_positions`` nodes (stride grows with the image), a random offset, and
    a random order; the first ``count`` are returned. Returns (min(count, nodes), 2) pixel (x, y), float.
    """
    stride = max(1, int((height * width / max_positions) ** 0.5))
    offset = torch.randint(stride, (2,), generator=generator)
    ys = torch.arange(int(offset[1]), height, stride)
    xs = torch.arange(int(offset[0]), width, stride)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
    order = torch.randperm(len(grid), generator=generator)[:count]
    return grid[order].float()


def style_positions(image_size: Sequence[int], count: int, generator: torch.Generator) -> Tensor:
    """``count`` distinct random pixels of an image of ``image_size`` = (H, W), as STROTSS samples its style
    exemplar: (count, 2) pixel (x, y), float."""
    height, width = image_size
    flat = torch.randperm(height * width, generator=generator)[:count]
    return torch.stack([flat % width, flat // width], dim=1).float()


def hypercolumns(features: Layers, positions: Tensor, image_size: Sequence[int]) -> list[Tensor]:
    """Bilinearly sample every layer at the same image positions.

    features: list of (B, C_l, H_l, W_l) covering the same image extent; positions: (N, 2) pixel (x, y) in an
    image of ``image_size`` = (height, width), the same for every item, or (B, N, 2), each item's own.
    Returns a list of (B, N, C_l), one per layer (kept apart so per-layer statistics need no slicing of the
    concatenation).
    """
    height, width = image_size
    grid = pixel_to_grid(positions.to(features[0].device), width, height)
    grid = grid.view(1, 1, -1, 2) if positions.dim() == 2 else grid.unsqueeze(1)  # (1 or B, 1, N, 2)
    return [F.grid_sample(layer, grid.to(layer.dtype).expand(len(layer), -1, -1, -1), mode="bilinear",
                          padding_mode="border", align_corners=False).squeeze(2).transpose(1, 2)
            for layer in features]


def network_hypercolumns(network: FeatureNetwork, images: Tensor, positions: Tensor) -> list[Tensor]:
    """``hypercolumns`` of the feature network's layers for images (B, 3, H, W) at positions (N, 2) or
    (B, N, 2): a list of (B, N, C_l)."""
    return hypercolumns(network(images), positions, images.shape[-2:])


def rgb_to_yuv(colors: Tensor) -> Tensor:
    """(..., 3) RGB -> (..., 3) YUV (STROTSS's orthonormal colour basis)."""
    return colors @ RGB_TO_YUV.to(colors).T


def cosine_cost(x: Tensor, y: Tensor) -> Tensor:
    """Cosine distance between every pair of rows: x (B, N, D), y (B, M, D) -> (B, N, M)."""
    return 1.0 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(1, 2)


def euclidean_cost(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean distance between every pair of rows, scaled as STROTSS (sqrt of squared distance / D):
    (B, N, D), (B, M, D) -> (B, N, M)."""
    return (torch.cdist(x, y).square() / x.shape[-1]).clamp(min=1e-5).sqrt()


def remd(x: Tensor, y: Tensor, cosine: bool = True) -> Tensor:
    """Relaxed earth mover's distance between sample sets, per batch item.

    x: (B, N, D) result samples; y: (B, M, D) target samples; cosine: cosine cost (else Euclidean).
    Returns (B,): max(mean_x min_y C, mean_y min_x C).
    """
    cost = cosine_cost(x, y) if cosine else euclidean_cost(x, y)
    return torch.maximum(cost.min(2).values.mean(1), cost.min(1).values.mean(1))


def covariance_matrix(centred: Tensor) -> Tensor:
    """Covariance (B, D, D) of centred samples (B, N, D)."""
    return centred.transpose(1, 2) @ centred / (centred.shape[1] - 1)


def centred_blocks(layers: Layers, mode: str) -> tuple[Tensor, list[Tensor]]:
    """Means (B, D) and centred samples of hypercolumn samples, layers: list of (B, N, C_l); mode "full" (one
    block: the whole hypercolumn) or "layers" (one block per layer, cross-layer covariances left out)."""
    if mode not in ("full", "layers"):
        raise ValueError(f"covariance mode '{mode}' is not 'full' or 'layers'")
    blocks = [torch.cat(layers, dim=-1)] if mode == "full" else layers
    means = [b.mean(1, keepdim=True) for b in blocks]
    return torch.cat(means, dim=-1).squeeze(1), [b - m for b, m in zip(blocks, means)]


def covariance_distance(centred: Tensor, target: Tensor) -> Tensor:
    """sum |covariance(centred) - target| per item: (B, N, D), (B, D, D) -> (B,)."""
    return (covariance_matrix(centred) - target).abs().sum((1, 2))


def moment_loss(layers: Layers, target: "StyleTarget",
                distance: Callable[[Tensor, Tensor], Tensor] = covariance_distance) -> Tensor:
    """Mean absolute difference of means plus of covariance entries. layers: list of (B, N, C_l). Returns (B,).

    distance: the covariance block's L1 distance to its target (the fast module passes its own)."""
    mean, centred = centred_blocks(layers, target.covariance)
    mean_term = (mean - target.mean).abs().mean(1)
    entries = sum(c.shape[-1] ** 2 for c in centred)
    return mean_term + sum(distance(c, t) for c, t in zip(centred, target.covariances)) / entries


def tile(tensor: Tensor, times: int) -> Tensor:
    """(B, ...) -> (times * B, ...), the batch repeated."""
    return tensor.repeat(times, *([1] * (tensor.dim() - 1)))


@dataclass
class StyleTarget:
    """Statistics of the style exemplars' hypercolumns, one set per view (B = views).

    unit: (B, M, D) unit-norm samples; yuv: (B, M, 3) colours; mean: (B, D); covariances: list of
    (B, d_i, d_i), one block or one per layer (``covariance`` = "full" or "layers").
    """
    unit: Tensor
    yuv: Tensor
    mean: Tensor
    covariances: list
    covariance: str

    def repeat(self, times: int) -> "StyleTarget":
        """The same targets repeated along the batch: (B, ...) -> (times * B, ...)."""
        return StyleTarget(tile(self.unit, times), tile(self.yuv, times), tile(self.mean, times),
                           [tile(c, times) for c in self.covariances], self.covariance)


def style_target(features: Layers, image_size: Sequence[int], samples: int, generator: torch.Generator,
                 covariance: str = "full", search_rank: int = 0) -> StyleTarget:
    """Sample style hypercolumns at ``samples`` random pixels and summarise them (see ``StyleTarget``).

    features: list of (B, C_l, H_l, W_l) of the style images; image_size: (height, width); search_rank: used
    by ``strotss_fast`` only (its approximate neighbour search); here the REMD is always exact.
    """
    layers = hypercolumns(features, style_positions(image_size, samples, generator), image_size)
    mean, centred = centred_blocks(layers, covariance)
    unit = F.normalize(torch.cat(layers, dim=-1), dim=-1)
    return StyleTarget(unit, rgb_to_yuv(layers[0]), mean, [covariance_matrix(c) for c in centred], covariance)


def style_loss(layers: Layers, target: StyleTarget, color_weight: float = 1.0) -> Tensor:
    """STROTSS style loss per item: REMD (cosine) + moments + color_weight * colour REMD (YUV).

    layers: list of (B, N, C_l) result samples, the image's colours first. Returns (B,).
    """
    loss = remd(torch.cat(layers, dim=-1), target.unit) + moment_loss(layers, target)
    return loss + color_weight * remd(rgb_to_yuv(layers[0]), target.yuv, cosine=False)


def self_similarity(x: Tensor) -> Tensor:
    """Cosine-distance self-similarity of samples, columns normalised to sum 1: (B, N, D) -> (B, N, N)."""
    distance = cosine_cost(x, x)
    return distance / distance.sum(1, keepdim=True).clamp(min=1e-8)


def content_loss(layers: Layers, content_layers: Layers) -> Tensor:
    """STROTSS content loss per item: mean |self-similarity(x) - self-similarity(content)| * N.

    layers, content_layers: lists of (B, N, C_l). Returns (B,).
    """
    x, content = torch.cat(layers, dim=-1), torch.cat(content_layers, dim=-1)
    return (self_similarity(x) - self_similarity(content)).abs().mean((1, 2)) * x.shape[1]


class StrotssLosses(Protocol):
    """What this module and ``strotss_fast`` both provide, the functions the style transfer calls
    (``utils.style.stylize.strotss_for`` returns one of the two modules): the same arguments, shapes and, up to
    rounding, values. Each module's ``style_loss`` takes the ``StyleTarget`` its own ``style_target`` made
    (``strotss_fast``'s carries a neighbour search)."""

    def sample_positions(self, height: int, width: int, count: int, generator: torch.Generator,
                         max_positions: int = ...) -> Tensor: ...

    def hypercolumns(self, features: Layers, positions: Tensor, image_size: Sequence[int]) -> list[Tensor]: ...

    def network_hypercolumns(self, network: FeatureNetwork, images: Tensor, positions: Tensor) -> list[Tensor]: ...

    def style_target(self, features: Layers, image_size: Sequence[int], samples: int, generator: torch.Generator,
                     covariance: str = ..., search_rank: int = ...) -> StyleTarget: ...

    def style_loss(self, layers: Layers, target: StyleTarget, color_weight: float = ...) -> Tensor: ...

    def moment_loss(self, layers: Layers, target: StyleTarget) -> Tensor: ...

    def content_loss(self, layers: Layers, content_layers: Layers) -> Tensor: ...

    def remd(self, x: Tensor, y: Tensor, cosine: bool = ...) -> Tensor: ...
