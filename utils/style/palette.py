"""Histogram matching onto the exemplar's palette: the stylized views' colours, part by part, after step 4a's
optimisation; and the start of the mesh's colours where no stylized view sees the surface (step 4c, ``all_round``)."""
from __future__ import annotations

import torch
from torch import Tensor

from utils.style.regions import MIN_STYLE_SAMPLES, labels_of

PALETTE_BLUR = 1 / 128  # the part-by-part change is blurred by a Gaussian this share of the view's side wide, so
#                          that the parts' borders leave no seams


def matched_colors(source: Tensor, palette: Tensor) -> Tensor:
    """``source`` colours (N, 3) with each channel's histogram matched to the ``palette``'s (M, 3) (scikit-image's
    match_histograms: equal source values keep equal colours, so a plain region stays plain)."""
    from skimage.exposure import match_histograms

    matched = match_histograms(source[:, None].double().cpu().numpy(), palette[:, None].double().cpu().numpy(),
                               channel_axis=-1)
    return torch.from_numpy(matched[:, 0]).to(source)


LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights of R, G, B in a colour's luminance
RAMP_BINS = 64  # the palette's colours averaged over this many luminance quantiles (``luminance_ramp``)


def luminance_ramp(source: Tensor, palette: Tensor, contrast_limit: float = 0.0) -> Tensor:
    """``source`` colours (N, 3) mapped by luminance onto the ``palette``'s (M, 3): each takes the palette's mean
    colour at the same luminance quantile (``RAMP_BINS`` bins, linear in between). Unlike ``matched_colors``, whose
    channels are matched one by one, a smooth gradient stays one path through the palette's colours instead of
    turning into bands of unrelated hues (a closed head's plain back, acquire.py); equal sources stay equal.

    ``contrast_limit`` > 0 reads the quantiles from the source's luminance histogram clipped at that many times its
    mean count, the excess spread evenly (``contrast_limited_quantiles``): a narrow range of luminance shared by many
    sources (an acquired head's plain back) then keeps a narrow stretch of the palette instead of the whole of it."""
    return palette_at(palette.to(source), luminance_quantiles(source, contrast_limit))


def luminance_quantiles(source: Tensor, contrast_limit: float = 0.0) -> Tensor:
    """The quantile (N,) in [0, 1] of each ``source`` colour's (N, 3) luminance among them: the middle of its equals'
    ranks, or with ``contrast_limit`` > 0 read from the clipped histogram (``contrast_limited_quantiles``)."""
    levels = source @ torch.tensor(LUMA, dtype=source.dtype, device=source.device)
    if contrast_limit > 0:
        return contrast_limited_quantiles(levels, contrast_limit)
    ordered = levels.sort().values
    rank = torch.searchsorted(ordered, levels) + torch.searchsorted(ordered, levels, right=True)
    return rank / 2 / len(levels)


def palette_at(palette: Tensor, quantile: Tensor) -> Tensor:
    """The ``palette``'s (M, 3) mean colour at each luminance ``quantile`` (N,) in [0, 1] (``RAMP_BINS`` bins,
    darkest first, linear in between). Returns (N, 3)."""
    luma = torch.tensor(LUMA, dtype=palette.dtype, device=palette.device)
    bins = torch.tensor_split(palette[(palette @ luma).argsort()], min(RAMP_BINS, len(palette)))
    ramp = torch.stack([b.mean(0) for b in bins]).to(quantile.device)  # (B, 3), darkest first
    position = (quantile * len(ramp) - 0.5).clamp(0, len(ramp) - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=len(ramp) - 1)
    weight = (position - low)[:, None].to(ramp)
    return (1 - weight) * ramp[low] + weight * ramp[high]


LIMIT_BINS = 256  # luminance bins on [0, 1] of ``contrast_limited_quantiles``' histogram


def contrast_limited_quantiles(levels: Tensor, limit: float) -> Tensor:
    """The quantile (N,) in [0, 1] of each of ``levels`` (N,) in [0, 1], read from their histogram with every bin
    clipped at ``limit`` times the mean count and the excess spread over all bins (CLAHE's clip limit, over the whole
    set instead of image tiles; scikit-image keeps it inside its tiled ``equalize_adapthist``). The quantile then
    rises at most ``limit`` + 1 times as fast as the level (the clipped count and the spread excess), so a crowded
    narrow range is not stretched across [0, 1]."""
    levels = levels.clamp(0, 1)
    counts = torch.histc(levels, LIMIT_BINS, 0, 1)
    cap = limit * len(levels) / LIMIT_BINS
    counts = counts.clamp(max=cap) + (counts - cap).clamp(min=0).sum() / LIMIT_BINS
    cdf = torch.cat([counts.new_zeros(1), counts.cumsum(0)]) / counts.sum()  # (LIMIT_BINS + 1,) at the bins' edges
    position = levels * LIMIT_BINS
    low = position.floor().long().clamp(max=LIMIT_BINS - 1)
    return cdf[low] + (position - low) * (cdf[low + 1] - cdf[low])


def _blur(images: Tensor, sigma: float) -> Tensor:
    """images (B, C, H, W) blurred by a Gaussian of ``sigma`` pixels (torchvision's)."""
    from torchvision.transforms.functional import gaussian_blur

    size = 2 * max(1, round(3 * sigma)) + 1
    return gaussian_blur(images, [size, size], [sigma, sigma])


def matched_by_part(images: Tensor, parts: Tensor, style: Tensor, style_parts: Tensor, share: float = 1.0) -> Tensor:
    """Images with each part's colours histogram-matched to the exemplar's same part (its whole head where that
    part has fewer than ``MIN_STYLE_SAMPLES`` pixels, its whole image where the head has), ``share`` of the way
    (0: the images unchanged).

    images (K, 3, S, S) in [0, 1] with part masks parts (K, R, S, S) (``regions.part_masks``); style (K, 3, H, W),
    the exemplar turned to each view, with style_parts (K, R, H, W). One match per part for all K views, so that
    the views keep agreeing. Outside the parts the images are unchanged; inside, the change is smoothed
    (``PALETTE_BLUR``) so that neighbouring parts meet without a seam. Returns (K, 3, S, S)."""
    if share <= 0:
        return images
    labels, style_labels = labels_of(parts.cpu()).to(images.device), labels_of(style_parts.cpu()).to(style.device)
    pixels, exemplar = images.permute(0, 2, 3, 1), style.permute(0, 2, 3, 1)  # (K, S, S, 3), (K, H, W, 3)
    change = torch.zeros_like(pixels)
    whole = exemplar[style_labels >= 0]
    if len(whole) < MIN_STYLE_SAMPLES:  # no head at all (degenerate landmarks): the whole image, as the loss does
        whole = exemplar.flatten(0, 2)
    for part in labels.unique():
        if part < 0:
            continue
        palette = exemplar[style_labels == part]
        if len(palette) < MIN_STYLE_SAMPLES:
            palette = whole
        inside = labels == part
        change[inside] = matched_colors(pixels[inside], palette) - pixels[inside]
    head = (labels >= 0).float().unsqueeze(1).to(images)
    sigma = PALETTE_BLUR * images.shape[-1]
    smooth = _blur(change.permute(0, 3, 1, 2) * head, sigma) / _blur(head, sigma).clamp(min=1e-6)
    return (images + share * smooth * head).clamp(0, 1)
