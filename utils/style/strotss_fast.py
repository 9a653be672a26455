"""STROTSS's losses on the CPU, several times faster than the reference ``utils/style/strotss.py``.

The same public functions and values (``tests/test_strotss.py`` checks values and gradients against the
reference); ``utils.style.stylize.strotss_for(device)`` chooses this module on the CPU only. Where the time goes:

- hypercolumns are sampled with embedding_bag on channels-last layers, inside the network's pass
  (``network_hypercolumns``), and their gradient is added in place into the network's own;
- the REMD's nearest neighbours are searched without autograd (k-d trees for the 3 colour dimensions,
  an argmax written for the CPU otherwise) and only the matched pairs are differentiated, by a fused
  autograd Function: the same value and gradient as differentiating through the min, at a fraction of the cost;
- with a ``SubspaceSearch`` (``search_rank``) the cosine neighbours are found in the style samples' principal
  subspace instead of all D dimensions (several times cheaper); the matched pairs' distances are still exact,
  so the value is the REMD of a near-optimal matching (bench/bench_stylize.py prints how near);
- the covariance is an exactly symmetric Gram product of the upper blocks, and its L1 distance has a
  written-out backward.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from utils.style import strotss
from utils.style.strotss import (FeatureNetwork, Layers, StyleTarget as ExactStyleTarget, centred_blocks, rgb_to_yuv,
                                 style_positions, tile)
from utils.style.strotss import content_loss, sample_positions  # noqa: F401 (the reference's, part of StrotssLosses)

NORM_FLOOR = 1e-12  # sample norms are clamped to at least this before dividing
KD_TREE_MAX_DIMENSIONS = 8  # exact nearest neighbours by k-d tree on the CPU up to this many dimensions


def bilinear_corners(positions: Tensor, image_size: Sequence[int],
                     layer_size: Sequence[int]) -> tuple[Tensor, Tensor]:
    """The four neighbours and bilinear weights of image positions in a layer covering the same extent.

    positions: (N, 2) pixel (x, y) in an image of ``image_size`` = (H, W); layer_size: (h, w). Pixel centres
    map to pixel centres and positions beyond the outer centres take the border's value (as grid_sample with
    align_corners=False and border padding). Returns (flat indices (N, 4) into h * w, weights (N, 4)).
    """
    (height, width), (rows, columns) = image_size, layer_size
    u = ((positions[:, 0] + 0.5) * columns / width - 0.5).clamp(0, columns - 1)
    v = ((positions[:, 1] + 0.5) * rows / height - 0.5).clamp(0, rows - 1)
    x0, y0 = u.floor().clamp(max=max(columns - 2, 0)), v.floor().clamp(max=max(rows - 2, 0))
    fx, fy = u - x0, v - y0
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=columns - 1), (y0 + 1).clamp(max=rows - 1)
    index = torch.stack([y0 * columns + x0, y0 * columns + x1, y1 * columns + x0, y1 * columns + x1], dim=1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=1)
    return index, weight


def hypercolumns(features: Layers, positions: Tensor, image_size: Sequence[int]) -> list[Tensor]:
    """The reference's ``hypercolumns``: layers (B, C_l, H_l, W_l) sampled at positions (N, 2) or (B, N, 2) ->
    list of (B, N, C_l).

    Each sample is a weighted sum of four rows of the layer seen as (B * H_l * W_l, C_l), which is what
    embedding_bag computes; on channels-last maps that view is free and the gradient comes back in the
    network's layout (several times faster than grid_sample, forward and backward).
    """
    return [_sample(layer, *_bags(positions, image_size, layer)) for layer in features]


def network_hypercolumns(network: FeatureNetwork, images: Tensor, positions: Tensor) -> list[Tensor]:
    """``hypercolumns(network(images), positions, images' (H, W))`` with a cheaper backward.

    network: a ``FeatureNetwork``; images: (B, 3, H, W); positions (N, 2) or (B, N, 2). Each layer's samples
    are taken as the network produces it, and their gradient is added in place into the gradient coming back from
    the deeper layers, instead of into a dense zero map that autograd would then add to it (two passes over every
    layer saved; the in-place add needs the CPU's channels-last layers).
    """
    columns = []

    def tap(layer):
        layer, samples = _SampleAndPass.apply(layer, *_bags(positions, images.shape[-2:], layer))
        columns.append(samples)
        return layer

    network(images, tap=tap)
    return columns


def _bags(positions, image_size, layer):
    """embedding_bag inputs that sample ``layer`` (B, C, h, w) at positions (N, 2) (shared) or (B, N, 2) (per
    item) of an image of ``image_size``: (rows (B * N, 4) of the layer seen as (B * h * w, C), weights (B * N, 4))."""
    batch, _, rows, cols = layer.shape
    shared = positions.dim() == 2
    index, weight = bilinear_corners(positions.reshape(-1, 2).to(layer.device), image_size, (rows, cols))
    index = index.view(1, -1).expand(batch, -1) if shared else index.view(batch, -1)
    bags = _flat_rows(index, rows * cols).view(-1, 4)
    weight = weight.to(layer.dtype)
    return bags, weight.repeat(batch, 1) if shared else weight


def _sample(layer, bags, weights):
    """The weighted rows ``bags`` of layer (B, C, h, w) seen as (B * h * w, C): (B, N, C)."""
    batch, channels = layer.shape[:2]
    table = layer.permute(0, 2, 3, 1).reshape(-1, channels)
    return F.embedding_bag(bags, table, mode="sum", per_sample_weights=weights).view(batch, -1, channels)


class _SampleAndPass(torch.autograd.Function):
    """(layer, its samples (B, N, C)) from layer (B, C, h, w); the backward adds the samples' gradient in place
    into the layer's own (channels-last), which is the next layer's input gradient, fresh from its backward."""

    @staticmethod
    def forward(ctx, layer, bags, weights):
        ctx.save_for_backward(bags, weights)
        ctx.layer_shape = layer.shape
        return layer, _sample(layer, bags, weights)

    @staticmethod
    def backward(ctx, grad_layer, grad_samples):
        bags, weights = ctx.saved_tensors
        batch, channels, rows, cols = ctx.layer_shape
        if grad_layer is None:
            grad_layer = weights.new_zeros(batch, rows, cols, channels).permute(0, 3, 1, 2)
        else:
            grad_layer = grad_layer.contiguous(memory_format=torch.channels_last)
        if grad_samples is not None:
            weighted = grad_samples.reshape(-1, 1, channels) * weights.unsqueeze(-1)  # (B * N, 4, C)
            flat = grad_layer.permute(0, 2, 3, 1).view(-1, channels)
            flat.index_add_(0, bags.reshape(-1), weighted.reshape(-1, channels))
        return grad_layer, None, None


def _argmax_both_ways(scores):
    """(scores.argmax(2), scores.argmax(1)) for (B, N, M): (B, N) and (B, M) int64; a tie may pick another of
    the equal entries. Overwrites ``scores`` (a temporary of the neighbour searches).

    The strided argmax over rows is slow on the CPU, the vectorised amax is not: the rows holding their column's
    maximum are marked in place with their index (plus one) and one more amax picks it.
    """
    along_rows = scores.argmax(2)
    rows = torch.arange(1, scores.shape[1] + 1, device=scores.device, dtype=scores.dtype).view(1, -1, 1)
    scores.eq_(scores.amax(1, keepdim=True)).mul_(rows)
    return along_rows, scores.amax(1).long() - 1


def _nearest_cosine(x, y):
    """Nearest neighbours under cosine distance, no autograd. x (B, N, D), y (B, M, D) unit rows.

    Returns (index into y for every x: (B, N), index into x for every y: (B, M)).
    """
    with torch.no_grad():
        similarity = x @ y.transpose(1, 2)
        return _argmax_both_ways(similarity)


def _nearest_euclidean(x, y):
    """Nearest neighbours under Euclidean distance, no autograd; as ``_nearest_cosine``.

    On the CPU, for the few dimensions of colours, exact k-d tree queries (SciPy) are about ten times faster
    than the (B, N, M) distance matrix the GPU uses."""
    with torch.no_grad():
        if x.device.type != "cpu" or x.shape[-1] > KD_TREE_MAX_DIMENSIONS:
            return _argmax_both_ways(torch.cdist(x, y).neg_())
        return _tree_nearest(x, y), _tree_nearest(y, x)


def _tree_nearest(queries, points):
    """Index of each query's nearest point, per batch item: (B, N, d), (B, M, d) -> (B, N) int64."""
    from scipy.spatial import cKDTree

    pairs = zip(queries.detach().double().numpy(), points.detach().double().numpy())
    found = [cKDTree(batch_points).query(batch_queries)[1] for batch_queries, batch_points in pairs]
    return torch.from_numpy(np.stack(found)).long()


def _flat_rows(index, count):
    """Per-item row indices (B, K) into sets of ``count`` rows -> indices into the B * count stacked rows: (B K,)."""
    offsets = torch.arange(index.shape[0], device=index.device).unsqueeze(1) * count
    return (index + offsets).reshape(-1)


def _gather(rows, index):
    """rows (B, M, D), index (B, N) -> (B, N, D) (row lookup; much faster than torch.gather on CPU)."""
    batch, count, dim = rows.shape
    return rows.reshape(batch * count, dim).index_select(0, _flat_rows(index, count)).reshape(*index.shape, dim)


def _euclidean_distance(a, b):
    """Row-wise Euclidean distance scaled as STROTSS (sqrt of squared distance / D): (B, N, D) x2 -> (B, N)."""
    return ((a - b).pow(2).sum(-1).clamp(min=1e-5) / a.shape[-1]).sqrt()


@dataclass
class SubspaceSearch:
    """Approximate cosine nearest neighbours between result samples and fixed unit target samples y.

    With y = c + y', c the targets' mean: x . y = x . c + x . y' and x . y' ~ (x V) . (y' V), V the top
    principal directions of the y'. So the similarity is an inner product of (r + 1)-vectors: queries
    [x V, x . c] and keys [y' V, 1]. basis V: (B, D, r); centre c: (B, D); keys: (B, M, r + 1).
    """

    basis: Tensor
    centre: Tensor
    keys: Tensor

    @classmethod
    def fit(cls, targets: Tensor, rank: int, power_iterations: int = 3, oversampling: int = 16) -> "SubspaceSearch":
        """From unit target rows (B, M, D), keeping ``rank`` principal directions.

        A randomized range finder: start from ``rank + oversampling`` target rows (in random order already),
        power iterations on the centred rows, then the exact eigenvectors inside that subspace.
        Not torch.pca_lowrank: same subspace (overlap 0.9986, same REMD excess) but 2.7x slower here (11.0 vs 4.1 s
        CPU at rank 256 of D 819, 2048 samples) and it draws from the global RNG, so outputs would vary run to run.
        """
        with torch.no_grad():
            centre = targets.mean(1)
            centred = targets - centre.unsqueeze(1)
            subspace = centred[:, :rank + oversampling].transpose(1, 2)  # (B, D, q)
            for _ in range(power_iterations):
                subspace = torch.linalg.qr(centred.transpose(1, 2) @ (centred @ subspace)).Q
            projected = centred @ subspace  # (B, M, q)
            _, vectors = torch.linalg.eigh(projected.transpose(1, 2) @ projected)  # ascending eigenvalues
            basis = (subspace @ vectors[..., -rank:]).contiguous()
            keys = torch.cat([centred @ basis, torch.ones_like(targets[..., :1])], dim=-1)
        return cls(basis, centre, keys)

    def repeat(self, times: int) -> "SubspaceSearch":
        """The same search repeated along the batch."""
        return SubspaceSearch(*(tile(t, times) for t in (self.basis, self.centre, self.keys)))

    def nearest(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Like ``_nearest_cosine(x, targets)`` for unit rows x (B, N, D), found in the subspace."""
        with torch.no_grad():
            queries = torch.cat([x @ self.basis, (x * self.centre.unsqueeze(1)).sum(-1, keepdim=True)], dim=-1)
            similarity = queries @ self.keys.transpose(1, 2)
            return _argmax_both_ways(similarity)


def remd(x: Tensor, y: Tensor, cosine: bool = True, search: Optional[SubspaceSearch] = None) -> Tensor:
    """Relaxed earth mover's distance between sample sets, per batch item.

    x: (B, N, D) result samples (compared by direction when ``cosine``: any length); y: (B, M, D) target samples
    (unit rows when ``cosine``); search: optional ``SubspaceSearch`` over y to find the neighbours (cosine only).
    Returns (B,): max(mean_x min_y C, mean_y min_x C).
    """
    if not cosine:
        to_y, to_x = _nearest_euclidean(x, y)
        return torch.maximum(_euclidean_distance(x, _gather(y, to_y)).mean(1),
                             _euclidean_distance(_gather(x, to_x), y).mean(1))
    with torch.no_grad():
        unit = F.normalize(x, dim=-1)
        to_y, to_x = search.nearest(unit) if search is not None else _nearest_cosine(unit, y)
        pooled = _pool_onto(y, to_x, x.shape[1])
    from_x = 1.0 - _MatchedCosine.apply(x, _gather(y, to_y)) / x.shape[1]
    from_y = 1.0 - _MatchedCosine.apply(x, pooled) / y.shape[1]
    return torch.maximum(from_x, from_y)


class _MatchedCosine(torch.autograd.Function):
    """sum_n x_n . rows_n / |x_n| per item for x, rows (B, N, D): (B,); x / |x| is never formed.

    The backward, rows_n / |x_n| - (x_n . rows_n) x_n / |x_n|^3 scaled by the item's gradient, is two passes
    over (B, N, D) where autograd makes about six, and none when the REMD's max took the other side."""

    @staticmethod
    def forward(ctx, x, rows):
        norm = x.norm(dim=-1)
        inverse_norm = norm.clamp(min=NORM_FLOOR).reciprocal()
        dots = (x * rows).sum(-1)
        ctx.save_for_backward(x, rows, inverse_norm, dots * inverse_norm.square() * (norm > NORM_FLOOR))
        return (dots * inverse_norm).sum(1)

    @staticmethod
    def backward(ctx, grad):
        if not grad.any():
            return None, None
        x, rows, inverse_norm, projection = ctx.saved_tensors
        scale = (grad.unsqueeze(1) * inverse_norm).unsqueeze(-1)  # (B, N, 1)
        return (rows * scale).addcmul_(x, projection.unsqueeze(-1) * scale, value=-1.0), None


def _pool_onto(y, to_x, count):
    """Sum of the target rows matched to each result sample: y (B, M, D), to_x (B, M) -> (B, count, D).

    With it the targets' side of the cosine REMD, 1 - mean_m x[to_x[m]] . y[m], is one product over the N
    results instead of M gathered rows.
    """
    batch, _, dim = y.shape
    pooled = y.new_zeros(batch * count, dim).index_add_(0, _flat_rows(to_x, count), y.reshape(-1, dim))
    return pooled.view(batch, count, dim)


GRAM_BLOCK = 512  # column block of the Gram product (only blocks on and above the diagonal are multiplied)


def _symmetric_gram(x, block=GRAM_BLOCK):
    """x^T x for (B, N, D) -> (B, D, D), exactly symmetric: only the column blocks on and above the diagonal
    are multiplied (about 60% of a full product at D ~ 2000), the others are their mirror images, and the
    diagonal blocks are averaged with their own transposes."""
    batch, _, dim = x.shape
    gram = x.new_empty(batch, dim, dim)
    for i in range(0, dim, block):
        for j in range(i, dim, block):
            product = x[:, :, i:i + block].transpose(1, 2) @ x[:, :, j:j + block]
            if j == i:
                product = (product + product.transpose(1, 2)) / 2
            gram[:, i:i + block, j:j + block] = product
            gram[:, j:j + block, i:i + block] = product.transpose(1, 2)
    return gram


def _covariance(centred):
    """Covariance (B, D, D) of centred samples (B, N, D) (exactly symmetric)."""
    return _symmetric_gram(centred).div_(centred.shape[1] - 1)


class _CovarianceDistance(torch.autograd.Function):
    """sum |cov(x) - target| per item, for centred samples x (B, N, D) and a target from ``_covariance``
    (B, D, D): (B,). Written out, the backward is one product, 2 / (N - 1) x sign(cov(x) - target) (the sign
    matrix is symmetric), where autograd would add a transposed copy and make several passes over D x D."""

    @staticmethod
    def forward(ctx, centred, target):
        difference = _covariance(centred).sub_(target)
        distance = torch.linalg.vector_norm(difference, ord=1, dim=(1, 2))
        ctx.save_for_backward(centred, difference.sign_())
        return distance

    @staticmethod
    def backward(ctx, grad):
        centred, sign = ctx.saved_tensors
        scale = grad * (2.0 / (centred.shape[1] - 1))
        return (centred @ sign).mul_(scale.view(-1, 1, 1)), None


def moment_loss(layers: Layers, target: ExactStyleTarget) -> Tensor:
    """The reference's ``moment_loss`` with the covariance distance of ``_CovarianceDistance``: (B,)."""
    return strotss.moment_loss(layers, target, _CovarianceDistance.apply)


@dataclass
class StyleTarget(ExactStyleTarget):
    """The reference's ``StyleTarget`` plus search: a ``SubspaceSearch`` over ``unit`` for the REMD's
    neighbours, or None for the exact search."""
    search: Optional[SubspaceSearch] = None

    def repeat(self, times: int) -> "StyleTarget":
        """The same targets repeated along the batch: (B, ...) -> (times * B, ...)."""
        search = None if self.search is None else self.search.repeat(times)
        return StyleTarget(**vars(super().repeat(times)), search=search)


def style_target(features: Layers, image_size: Sequence[int], samples: int, generator: torch.Generator,
                 covariance: str = "full", search_rank: int = 0) -> StyleTarget:
    """The reference's ``style_target`` with a ``SubspaceSearch`` of ``search_rank`` principal directions for
    the REMD's neighbours (0 or at least D: the exact search)."""
    layers = hypercolumns(features, style_positions(image_size, samples, generator), image_size)
    mean, centred = centred_blocks(layers, covariance)
    unit = F.normalize(torch.cat(layers, dim=-1), dim=-1)
    search = SubspaceSearch.fit(unit, search_rank) if 0 < search_rank < unit.shape[-1] else None
    return StyleTarget(unit, rgb_to_yuv(layers[0]), mean, [_covariance(c) for c in centred], covariance, search)


def style_loss(layers: Layers, target: StyleTarget, color_weight: float = 1.0) -> Tensor:
    """STROTSS style loss per item: REMD (cosine) + moments + color_weight * colour REMD (YUV).

    layers: list of (B, N, C_l) result samples, the image's colours first. Returns (B,).
    """
    loss = remd(torch.cat(layers, dim=-1), target.unit, search=target.search)
    loss = loss + moment_loss(layers, target)
    color = remd(rgb_to_yuv(layers[0]), target.yuv, cosine=False)
    return loss + color_weight * color
