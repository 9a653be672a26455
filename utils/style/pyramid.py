"""Laplacian pyramids: the image parameterisation of the style transfer (coarse levels first at coarse scales)."""
import torch.nn.functional as F
from kornia.geometry.transform import pyrdown
from torch import Tensor


def _upsample(image, size):
    """Bilinear resize of (B, C, H, W) to ``size`` = (H', W')."""
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Decompose (B, C, H, W) into ``levels`` tensors: band-pass details from fine to coarse, then the residual.

    Level l has size about H / 2**l. ``synthesize(pyramid)`` gives the image back exactly.
    """
    pyramid, current = [], image
    for _ in range(levels - 1):
        smaller = pyrdown(current)
        pyramid.append(current - _upsample(smaller, current.shape[-2:]))
        current = smaller
    pyramid.append(current)
    return pyramid


def synthesize(pyramid: list[Tensor]) -> Tensor:
    """Rebuild the image from pyramid levels (fine to coarse, residual last): (B, C, H_0, W_0).

    Passing ``pyramid[j:]`` gives the image at level j's size, built from the coarse levels only.
    """
    image = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        image = _upsample(image, detail.shape[-2:]) + detail
    return image
