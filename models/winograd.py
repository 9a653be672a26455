"""Winograd F(4x4, 3x3) convolution for frozen 3x3 layers on the CPU (Lavin and Gray, CVPR 2016).

oneDNN runs VGG's 3x3 convolutions on the CPU as direct convolutions, already near the machine's peak; the
Winograd form computes each 4x4 output tile from a 6x6 input tile with 36 products instead of 144, as 36
batched matrix products over (tiles x channels). Where a layer has at least ``MIN_CHANNELS`` input channels the
matrix products dominate the (memory-bound) tile transforms and the layer runs 1.3-3x faster (bench_stylize.py).
Results agree with ``F.conv2d`` to about 1e-5 relative. The weights are frozen: only the input gets a gradient,
itself a Winograd convolution with the flipped, transposed filters. ``place_winograd`` applies the form when a
network is placed on the CPU and takes it off for any other device (cuDNN chooses its own algorithms there, and
the transformed filters, about 446 MiB for VGG16, would only take memory).
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MIN_CHANNELS = 128  # input channels from which the Winograd form is faster here (64-channel layers are not)
TILE = 4  # output tile side: F(4x4, 3x3)
BIAS_COMPONENT = 6 + 1  # Winograd component (1, 1): the output transform copies it to every output of its tile
INPUT_TRANSFORM = torch.tensor([[4, 0, -5, 0, 1, 0],
                                [0, -4, -4, 1, 1, 0],
                                [0, 4, -4, -1, 1, 0],
                                [0, -2, -1, 2, 1, 0],
                                [0, 2, -1, -2, 1, 0],
                                [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
FILTER_TRANSFORM = torch.tensor([[1 / 4, 0, 0],
                                 [-1 / 6, -1 / 6, -1 / 6],
                                 [-1 / 6, 1 / 6, -1 / 6],
                                 [1 / 24, 1 / 12, 1 / 6],
                                 [1 / 24, -1 / 12, 1 / 6],
                                 [0, 0, 1]], dtype=torch.float64)
OUTPUT_TRANSFORM = torch.tensor([[1, 1, 1, 1, 1, 0],
                                 [0, 1, -1, 2, -2, 0],
                                 [0, 1, 1, 4, 4, 0],
                                 [0, 1, -1, 8, -8, 1]], dtype=torch.float64)


def transform_filters(weight: Tensor) -> Tensor:
    """(C_out, C_in, 3, 3) cross-correlation filters -> (36, C_in, C_out) contiguous Winograd-domain filters."""
    matrix = FILTER_TRANSFORM.to(weight.device)
    transformed = matrix @ weight.double() @ matrix.T  # (C_out, C_in, 6, 6)
    return transformed.permute(2, 3, 1, 0).reshape(36, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def _two_sided(matrix, tiles):
    """matrix (a, 6) applied to both tile axes of tiles (6, 6, N): (a, a, N)."""
    rows = (matrix @ tiles.reshape(6, -1)).view(matrix.shape[0], 6, -1)
    return torch.matmul(matrix, rows)


def winograd_conv3x3(images: Tensor, filters: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """3x3 cross-correlation, stride 1, zero padding 1, of images (B, C_in, H, W) with Winograd-domain filters
    (36, C_in, C_out) from ``transform_filters``, plus an optional bias (C_out,): (B, C_out, H, W), channels-last.

    The bias is added to Winograd component (1, 1), which the output transform spreads to all 16 outputs of a
    tile (column 1 of the output transform is all ones): 1/36 of a pass over the output instead of a whole one."""
    batch, channels, height, width = images.shape
    rows, cols = -(-height // TILE), -(-width // TILE)
    padded = F.pad(images.permute(0, 2, 3, 1), (0, 0, 1, TILE * cols + 1 - width, 1, TILE * rows + 1 - height))
    stride_b, stride_h, stride_w, stride_c = padded.stride()
    tiles = padded.as_strided((6, 6, batch, rows, cols, channels),
                              (stride_h, stride_w, stride_b, TILE * stride_h, TILE * stride_w, stride_c))
    transformed = _two_sided(INPUT_TRANSFORM.to(images), tiles.reshape(6, 6, -1))  # (6, 6, tiles * C_in)
    products = torch.bmm(transformed.view(36, -1, channels), filters)  # (36, tiles, C_out)
    if bias is not None:
        products[BIAS_COMPONENT] += bias
    out_channels = filters.shape[2]
    outputs = _two_sided(OUTPUT_TRANSFORM.to(images), products.view(6, 6, -1))  # (4, 4, tiles * C_out)
    tiled = torch.empty((batch, out_channels, TILE * rows, TILE * cols), dtype=images.dtype, device=images.device,
                        memory_format=torch.channels_last)
    tiled.permute(0, 2, 3, 1).view(batch, rows, TILE, cols, TILE, out_channels).copy_(
        outputs.view(TILE, TILE, batch, rows, cols, out_channels).permute(2, 3, 0, 4, 1, 5))
    if (TILE * rows, TILE * cols) == (height, width):
        return tiled
    return tiled[:, :, :height, :width].contiguous(memory_format=torch.channels_last)  # a tensor, not a view


class _WinogradConvolution(torch.autograd.Function):
    """y = conv3x3(x, w) + b with frozen w, b: only x gets a gradient (a Winograd convolution as well)."""

    @staticmethod
    def forward(ctx, images, forward_filters, backward_filters, bias):
        ctx.backward_filters = backward_filters
        return winograd_conv3x3(images, forward_filters, bias)

    @staticmethod
    def backward(ctx, grad):
        grad_images = winograd_conv3x3(grad.contiguous(memory_format=torch.channels_last), ctx.backward_filters)
        return grad_images, None, None, None


class WinogradConv2d(nn.Module):
    """A frozen 3x3 / stride 1 / padding 1 ``nn.Conv2d`` (kept as ``conv``) run in Winograd form."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        weight = conv.weight.detach()
        self.register_buffer("forward_filters", transform_filters(weight))
        flipped = weight.flip(2, 3).transpose(0, 1)  # input gradient = correlation with these
        self.register_buffer("backward_filters", transform_filters(flipped))

    def forward(self, images: Tensor) -> Tensor:
        bias = None if self.conv.bias is None else self.conv.bias.detach()
        return _WinogradConvolution.apply(images, self.forward_filters, self.backward_filters, bias)


def eligible(layer: nn.Module) -> bool:
    """Whether ``layer`` is a 3x3 / stride 1 / padding 1 convolution wide enough for the Winograd form."""
    return (isinstance(layer, nn.Conv2d) and layer.kernel_size == (3, 3) and layer.stride == (1, 1)
            and layer.padding == (1, 1) and layer.dilation == (1, 1) and layer.groups == 1
            and layer.padding_mode == "zeros" and layer.in_channels >= MIN_CHANNELS)


def place_winograd(module: nn.Module, device: Union[str, torch.device]) -> nn.Module:
    """Before ``module`` goes to ``device``: on the CPU every eligible convolution inside it becomes its frozen
    ``WinogradConv2d``; elsewhere every ``WinogradConv2d`` goes back to its plain convolution. In place;
    returns ``module``."""
    on_cpu = torch.device(device).type == "cpu"
    parents = [m for m in module.modules() if not isinstance(m, WinogradConv2d)]  # not the convolution it holds
    for parent in parents:
        for name, child in list(parent.named_children()):
            if on_cpu and eligible(child):
                setattr(parent, name, WinogradConv2d(child))
            elif not on_cpu and isinstance(child, WinogradConv2d):
                setattr(parent, name, child.conv)
    return module
