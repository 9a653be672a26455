"""Reading a portrait photo for acquisition: any common file becomes a uint8 (H, W, 3) RGB array.

``utils.io.images.read_image_array`` already turns grayscale, gray+alpha, RGBA (over white) and
16-bit files into RGB in [0, 1]; here the size is checked and huge photos are downscaled.
"""
from pathlib import Path

import cv2
import numpy as np

from utils.errors import InputError
from utils.io.images import read_image_array, to_uint8_array


def load_photo(path: str | Path, min_side: int = 128, max_side: int = 1024) -> tuple[np.ndarray, float]:
    """A photo file as (uint8 (H, W, 3) RGB, scale): downscaled so its longer side is at most ``max_side``.

    scale: the factor applied (1.0 when the photo was small enough). A photo whose shorter side is
    under ``min_side`` pixels raises ``InputError`` (a face needs detail to be modelled).
    """
    if not Path(path).is_file():
        raise InputError(f"{path}: no such photo; check the path")
    image = read_image_array(path)
    height, width = image.shape[:2]
    if min(height, width) < min_side:
        raise InputError(f"{path}: {width}x{height} pixels is too small to model a head; "
                         f"use a photo at least {min_side} pixels on its shorter side")
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(to_uint8_array(image)), scale
