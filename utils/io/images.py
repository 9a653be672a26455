"""Image files <-> float tensors (3, H, W) in [0, 1], RGB, at every interface."""
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageFile

from utils.errors import InputError
from utils.io.files import TEMP_MARK, atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION = 0x0112  # the EXIF tag a phone writes instead of turning the pixels; 1: stored upright
TURNED = (5, 6, 7, 8)  # orientations that swap width and height


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation (1-8) of an image file; 1 when it has none or cannot be read."""
    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError):
        return 1
    return orientation if orientation in range(1, 9) else 1


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """An image array (H, W, ...) as stored -> as a viewer shows it, for an EXIF ``orientation`` (PIL's
    ``ImageOps.exif_transpose`` on arrays: 2 mirrored, 3 turned half round, 4 flipped, 5 transposed, 6 turned a
    quarter clockwise, 7 transversed, 8 a quarter anticlockwise)."""
    if orientation in (5, 7):
        array = array.swapaxes(0, 1)
    turns = {3: 2, 6: -1, 7: 2, 8: 1}.get(orientation, 0)
    array = np.rot90(array, turns) if turns else array
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 4:
        array = array[::-1]
    return np.ascontiguousarray(array)


def read_image_array(path: str | Path) -> np.ndarray:
    """Read an image file as an RGB float32 array (H, W, 3) in [0, 1].

    Grayscale is replicated to three channels, alpha is composited over white,
    8- and 16-bit files are both scaled to [0, 1]. An EXIF orientation (a phone photo) is applied.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image not found")
    _check_complete_jpeg(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # unchanged: the EXIF orientation too
    if raw is None or raw.size == 0:
        raise InputError(f"{path}: not a readable image; save it as PNG or JPEG")
    raw = upright(raw, exif_orientation(path))
    scale = float(np.iinfo(raw.dtype).max) if np.issubdtype(raw.dtype, np.integer) else 1.0
    img = raw.astype(np.float32) / scale
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] > 4:
        raise InputError(f"{path}: {img.shape[2]} channels not supported; save it as an RGB image")
    rgb = np.ascontiguousarray(composite_over_white(img)[:, :, ::-1])  # OpenCV stores BGR
    return np.clip(rgb, 0.0, 1.0)


def _check_complete_jpeg(path):
    """InputError for a truncated or damaged JPEG, which OpenCV decodes half grey after a libjpeg warning.

    Other formats need no check: OpenCV returns nothing for a truncated PNG or WebP (measured).
    """
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":  # JPEG's start-of-image marker
            return
    truncated_allowed, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError) as err:
        raise InputError(f"{path}: damaged or truncated JPEG ({err}); save it again or replace it") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_allowed


def read_image_downscaled(path: str | Path, max_side: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """An image file read at most ``max_side`` pixels a side, without decoding it whole when it is larger
    (JPEG is decoded at 1/2, 1/4 or 1/8 size directly), so memory stays bounded for very large files.

    Returns (array (h, w, 3) float32 RGB in [0, 1] as ``read_image_array`` gives, scale (2,): working pixels per
    file pixel along x and y, (H, W): the file's size). Map working (x, y) to the file's with ``to_file_pixels``.
    Both are upright, as ``read_image_array`` gives them: the file's pixels after its EXIF orientation.
    """
    path = Path(path)
    orientation = exif_orientation(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if max(width, height) <= max_side or image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                small = None
            else:
                factor = max_side / max(width, height)
                target = (max(1, round(width * factor)), max(1, round(height * factor)))
                image.draft("RGB", target)  # JPEG only: decode at a reduced size
                rgba = image.convert("RGBA").resize(target, Image.Resampling.BOX)
                white = Image.new("RGBA", target, (255, 255, 255, 255))
                small = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.float32) / 255.0
                small = upright(small, orientation)
    except OSError:  # not an image PIL can open (or damaged): read_image_array says which
        small = None
        width = height = None
    if small is None:
        array = read_image_array(path)
        return array, np.ones(2), array.shape[:2]
    if orientation in TURNED:
        width, height = height, width
    return small, np.array([small.shape[1] / width, small.shape[0] / height]), (height, width)


def to_file_pixels(points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Pixel (x, y) points (..., 2) on a copy scaled by ``scale`` (2,) -> the same points on the original."""
    return (np.asarray(points, dtype=np.float64) + 0.5) / scale - 0.5


def to_copy_pixels(points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Pixel (x, y) points (..., 2) on an original -> the same points on its copy scaled by ``scale`` (2,)."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file as ``read_image_array`` gives it (upright), read from its header (nothing
    decoded); ``read_image_array``'s one-line error when it is not a readable image."""
    try:
        with Image.open(path) as image:
            width, height = image.size
        return (width, height) if exif_orientation(path) in TURNED else (height, width)
    except OSError:
        return read_image_array(path).shape[:2]


def composite_over_white(image: np.ndarray) -> np.ndarray:
    """A float array (H, W, C) in [0, 1] -> (H, W, 3): alpha (the last channel when C is 2 or 4) composited over
    white, then gray (C of 1 or 2) replicated to three channels. The colour channels keep their order."""
    if image.shape[2] in (2, 4):
        alpha = image[:, :, -1:]
        image = image[:, :, :-1] * alpha + (1 - alpha)
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def load_image(path: str | Path, device: str | torch.device = "cpu") -> torch.Tensor:
    """Load an image file as a float tensor (3, H, W) in [0, 1], RGB."""
    array = read_image_array(path)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().to(device)


def to_uint8_array(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """Tensor (3, H, W) or array (H, W, 3) in [0, 1] -> uint8 array (H, W, 3), RGB."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path: str | Path, image: torch.Tensor | np.ndarray) -> None:
    """Write a tensor (3, H, W) or array (H, W, 3) in [0, 1] to ``path`` atomically."""
    rgb = to_uint8_array(image)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[:, :, ::-1])):
            raise InputError(f"{path}: could not write the image (check the folder is writable)")


def pixel_to_grid(points: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pixel (x, y) (..., 2) -> grid_sample's normalised coordinates (align_corners=False)."""
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    return (points + 0.5) * scale - 1.0


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly inside ``folder`` (temporary files excluded)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and TEMP_MARK not in p.name) if folder.is_dir() else []
