"""STROTSS losses (Kolkin et al., CVPR 2019) on sampled hypercolumns, batched over views.

A hypercolumn is the concatenation, at one image position, of the feature network's layers (the image
itself first). Losses compare the hypercolumns of B result images with B style targets (one per view):

- relaxed earth mover's distance (REMD) with cosine cost,
- moment matching (means and covariances),
- a colour REMD in YUV with Euclidean cost,
- the content loss: self-similarity of the result's hypercolumns against the content's.

The REMD needs the nearest neighbour of every sample in the other set; its gradient flows through those
neighbours only, so the (N, M) cost matrix is built without autograd and only the matched pairs are
differentiated: the same value and gradient as differentiating through the min, at a fraction of the cost.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

RGB_TO_YUV = torch.tensor([[0.577350, 0.577350, 0.577350],
                           [-0.577350, 0.788675, -0.211325],
                           [-0.577350, -0.211325, 0.788675]])
COLOR_CHANNELS = 3


def pixel_to_grid(points, width, height):
    """Pixel (x, y) (..., 2) -> grid_sample's normalised coordinates (align_corners=False)."""
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    return (points + 0.5) * scale - 1.0


def sample_positions(height, width, count, generator, max_positions=128 ** 2):
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


def hypercolumns(features, positions, image_size):
    """Bilinearly sample every layer at the same image positions and concatenate.

    features: list of (B, C_l, H_l, W_l) covering the same image extent; positions: (N, 2) or (B, N, 2)
    pixel (x, y) in an image of ``image_size`` = (height, width). Returns (B, N, sum C_l).
    """
    batch = features[0].shape[0]
    height, width = image_size
    grid = pixel_to_grid(positions.to(features[0].device), width, height)
    grid = grid.expand(batch, -1, -1).unsqueeze(1) if grid.dim() == 2 else grid.unsqueeze(1)  # (B, 1, N, 2)
    columns = [F.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=False)
               for f in features]
    return torch.cat(columns, dim=1).squeeze(2).transpose(1, 2)


def rgb_to_yuv(colors):
    """(..., 3) RGB -> (..., 3) YUV (STROTSS's orthonormal colour basis)."""
    return colors @ RGB_TO_YUV.to(colors).T


def _nearest_cosine(x, y):
    """Nearest neighbours under cosine distance, no autograd. x (B, N, D), y (B, M, D) unit rows.

    Returns (index into y for every x: (B, N), index into x for every y: (B, M)).
    """
    with torch.no_grad():
        similarity = x @ y.transpose(1, 2)
        return similarity.argmax(2), similarity.argmax(1)


def _nearest_euclidean(x, y):
    """Nearest neighbours under Euclidean distance, no autograd; as ``_nearest_cosine``."""
    with torch.no_grad():
        cost = torch.cdist(x, y)
        return cost.argmin(2), cost.argmin(1)


def _gather(rows, index):
    """rows (B, M, D), index (B, N) -> (B, N, D)."""
    return torch.gather(rows, 1, index.unsqueeze(-1).expand(-1, -1, rows.shape[-1]))


def _cosine_distance(a, b):
    """Row-wise cosine distance of unit rows: (B, N, D) x2 -> (B, N)."""
    return 1.0 - (a * b).sum(-1)


def _euclidean_distance(a, b):
    """Row-wise Euclidean distance scaled as STROTSS (sqrt of squared distance / D): (B, N, D) x2 -> (B, N)."""
    return ((a - b).pow(2).sum(-1).clamp(min=1e-5) / a.shape[-1]).sqrt()


def remd(x, y, cosine=True):
    """Relaxed earth mover's distance between sample sets, per batch item.

    x: (B, N, D) result samples; y: (B, M, D) target samples (unit rows when ``cosine``, pre-normalised
    by the caller for x as well). Returns (B,): max(mean_x min_y C, mean_y min_x C).
    """
    nearest, distance = (_nearest_cosine, _cosine_distance) if cosine else (_nearest_euclidean, _euclidean_distance)
    to_y, to_x = nearest(x, y)
    from_x = distance(x, _gather(y, to_y)).mean(1)
    from_y = distance(_gather(x, to_x), y).mean(1)
    return torch.maximum(from_x, from_y)


def covariance_blocks(x, blocks):
    """Covariance of samples restricted to channel blocks.

    x: (B, N, D); blocks: list of (start, stop). Returns (means (B, D), list of (B, d_i, d_i)).
    """
    mean = x.mean(1)
    centred = x - mean.unsqueeze(1)
    covariances = [centred[..., a:b].transpose(1, 2) @ centred[..., a:b] / (x.shape[1] - 1) for a, b in blocks]
    return mean, covariances


def moment_loss(x, target_mean, target_covariances, blocks):
    """Mean absolute difference of means plus of covariance entries (over the given blocks). Returns (B,)."""
    mean, covariances = covariance_blocks(x, blocks)
    mean_term = (mean - target_mean).abs().mean(1)
    entries = sum((b - a) ** 2 for a, b in blocks)
    cov_term = sum((c - t).abs().sum((1, 2)) for c, t in zip(covariances, target_covariances)) / entries
    return mean_term + cov_term


def channel_blocks(channels, mode):
    """Channel blocks for the covariance: "full" (one block) or "layers" (one block per layer).

    channels: list of per-layer channel counts. Returns a list of (start, stop).
    """
    bounds = torch.cumsum(torch.tensor([0] + list(channels)), 0).tolist()
    if mode == "full":
        return [(0, bounds[-1])]
    if mode == "layers":
        return list(zip(bounds[:-1], bounds[1:]))
    raise ValueError(f"covariance mode '{mode}' is not 'full' or 'layers'")


@dataclass
class StyleTarget:
    """Statistics of the style exemplars' hypercolumns, one set per view (B = views).

    unit: (B, M, D) unit-norm samples; yuv: (B, M, 3) colours; mean: (B, D); covariances: list of
    (B, d_i, d_i) over ``blocks``.
    """
    unit: torch.Tensor
    yuv: torch.Tensor
    mean: torch.Tensor
    covariances: list
    blocks: list

    def repeat(self, times):
        """The same targets repeated along the batch: (B, ...) -> (times * B, ...)."""
        def tile(t):
            return t.repeat(times, *([1] * (t.dim() - 1)))
        return StyleTarget(tile(self.unit), tile(self.yuv), tile(self.mean),
                           [tile(c) for c in self.covariances], self.blocks)


def style_target(features, image_size, samples, generator, covariance="full"):
    """Sample style hypercolumns at ``samples`` random pixels and summarise them.

    features: list of (B, C_l, H_l, W_l) of the style images; image_size: (height, width).
    """
    height, width = image_size
    flat = torch.randperm(height * width, generator=generator)[:samples]
    positions = torch.stack([flat % width, flat // width], dim=1).float()
    columns = hypercolumns(features, positions, image_size)
    blocks = channel_blocks([f.shape[1] for f in features], covariance)
    mean, covariances = covariance_blocks(columns, blocks)
    return StyleTarget(F.normalize(columns, dim=-1), rgb_to_yuv(columns[..., :COLOR_CHANNELS]),
                       mean, covariances, blocks)


def style_loss(x, target, color_weight=1.0):
    """STROTSS style loss per item: REMD (cosine) + moments + color_weight * colour REMD (YUV). x: (B, N, D) -> (B,)."""
    loss = remd(F.normalize(x, dim=-1), target.unit)
    loss = loss + moment_loss(x, target.mean, target.covariances, target.blocks)
    color = remd(rgb_to_yuv(x[..., :COLOR_CHANNELS]), target.yuv, cosine=False)
    return loss + color_weight * color


def self_similarity(x):
    """Cosine-distance self-similarity of samples, columns normalised to sum 1: (B, N, D) -> (B, N, N)."""
    unit = F.normalize(x, dim=-1)
    distance = 1.0 - unit @ unit.transpose(1, 2)
    return distance / distance.sum(1, keepdim=True).clamp(min=1e-8)


def content_loss(x, content):
    """STROTSS content loss per item: mean |self-similarity(x) - self-similarity(content)| * N. -> (B,)."""
    return (self_similarity(x) - self_similarity(content)).abs().mean((1, 2)) * x.shape[1]
