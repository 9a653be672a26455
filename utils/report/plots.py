"""Pictures for people to look at: keypoint overlays and loss curves (matplotlib, no display)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.io.files import atomic_path  # noqa: E402
from utils.io.images import to_uint8_array  # noqa: E402

if TYPE_CHECKING:
    import torch
    from numpy.typing import ArrayLike

POINT_COLORS = ("#00e5ff", "#ff3d00", "#76ff03", "#ffea00", "#d500f9")


def save_keypoint_overlay(path: str | Path, image: torch.Tensor | np.ndarray, point_sets: Mapping[str, ArrayLike],
                          show_indices: bool = True, title: str | None = None) -> None:
    """Draw named sets of points over an image and save it as PNG.

    image: tensor (3, H, W) or array (H, W, 3) in [0, 1];
    point_sets: {label: (N, 2) array-like of pixel (x, y)}, drawn in order with a legend.
    """
    rgb = to_uint8_array(image)
    height, width = rgb.shape[:2]
    fig = plt.figure(figsize=(width / 100 * 1.5, height / 100 * 1.5), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(rgb)
    for (label, points), color in zip(point_sets.items(), POINT_COLORS):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ax.scatter(points[:, 0], points[:, 1], s=10, c=color, label=label, edgecolors="black", linewidths=0.3)
        if show_indices:
            for index, (x, y) in enumerate(points):
                ax.annotate(str(index), (x, y), xytext=(2, 2), textcoords="offset points", fontsize=5, color=color)
    if len(point_sets) > 1:
        ax.legend(loc="lower right", fontsize=6)
    if title:
        ax.set_title(title, fontsize=7, y=0.97, color="white", backgroundcolor="black")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_loss_curves(path: str | Path, history: Mapping[str, Sequence[float]], title: str | None = None) -> None:
    """Plot loss curves: history is {name: list of floats per iteration}; log scale where positive."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, values in history.items():
        ax.plot(np.arange(len(values)), values, label=name, linewidth=1)
    if all(min(v) > 0 for v in history.values() if len(v)):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
