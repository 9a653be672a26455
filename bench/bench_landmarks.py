"""Landmark accuracy on the RRPS data: plain dlib against ours (models/landmark_detector.py). Prints; asserts nothing.

    .venv/bin/python -m bench.bench_landmarks [--data ../shared/data/rrps] [--limit N] [--only NAME ...]

Content renders: error against the dlib landmarks shipped with them (content_pts<k>.txt).
Style images: detection rate and error against their Face-of-Art landmarks (<n>.txt, row/col).
Errors are mean point distances over the distance between the outer eye corners (points 36 and 45).
The style figures are also given for the even- and the odd-numbered images apart (tune on one half,
check on the other), and for the images that came with a warning to check them by eye and those without.
Where one name has both a .png and a .jpg (1, 2), the .png is the picture its .txt describes; the .jpg is
a different portrait and is left out.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from models.landmark_detector import checks_by_eye, dlib_models, detect_landmarks, predict
from utils.errors import InputError
from utils.io.images import read_image_array, to_uint8_array
from utils.io.landmarks import landmark_error, load_landmarks

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "rrps"
IMAGE_SUFFIXES = (".png", ".jpg")  # preferred first when one name has both


def plain_dlib(image):
    """The baseline: dlib's HOG detector (upsampled once), the CNN when HOG finds nothing, one predictor call."""
    _, hog, cnn = dlib_models()
    rgb = to_uint8_array(image)
    rects = hog(rgb, 1) or [detection.rect for detection in cnn(rgb, 0)]
    if not rects:
        raise InputError("plain dlib found no face")
    largest = max(rects, key=lambda r: r.width() * r.height())
    return predict(rgb, (largest.left(), largest.top(), largest.right(), largest.bottom()))


def ours(image):
    return detect_landmarks(image)


METHODS = {"plain dlib": plain_dlib, "ours": ours}


def content_pairs(data):
    """[(render, its shipped landmark file)] for every content render."""
    return [(image, image.parent / image.name.replace("content", "content_pts").replace(".jpg", ".txt"))
            for image in sorted(data.glob("content/*/content*.jpg"))]


def style_pairs(data):
    """[(style image, its Face-of-Art landmark file)]: each .txt with an image of the same name (.png first)."""
    pairs = []
    for landmark_file in sorted(data.glob("style/*.txt")):
        images = [landmark_file.with_suffix(suffix) for suffix in IMAGE_SUFFIXES]
        images = [image for image in images if image.is_file()]
        if images:
            pairs.append((images[0], landmark_file))
    return pairs


def selected(pairs, names):
    """The pairs whose image's file name or stem is in ``names`` (all of them when names is None)."""
    if names is None:
        return pairs
    return [pair for pair in pairs if pair[0].name in names or pair[0].stem in names]


def evaluate(pairs, method):
    """({image name: error or None when no face found}, seconds per image, {names that came with a warning})."""
    errors, warned, start = {}, set(), time.perf_counter()
    for image_path, landmark_file in pairs:
        name = f"{image_path.parent.name}/{image_path.name}"
        image = read_image_array(image_path)
        reference = load_landmarks(landmark_file, image_size=image.shape[:2])
        with checks_by_eye() as checks:
            try:
                errors[name] = landmark_error(method(image), reference)
            except InputError:
                errors[name] = None
        if checks:
            warned.add(name)
    return errors, (time.perf_counter() - start) / max(len(pairs), 1), warned


def summary(errors):
    """'found F of N  mean M  median D' for {name: error or None}."""
    found = np.array([e for e in errors.values() if e is not None])
    figures = f"mean {found.mean():.4f}  median {np.median(found):.4f}" if found.size else "no face found"
    return f"found {found.size:3d} of {len(errors):3d}  {figures}"


def number_parity(name):
    """'even' or 'odd' for an image named <number>.<suffix> (after its folder), else None."""
    stem = name.split("/")[-1].split(".")[0]
    return ("even", "odd")[int(stem) % 2] if stem.isdigit() else None


def report(title, errors, seconds, warned, worst=0):
    print(f"  {title:11s} {summary(errors)}  ({seconds:.2f} s/image)")
    if warned:
        print(f"    with a warning to check by eye: {summary({n: e for n, e in errors.items() if n in warned})}; "
              f"without: {summary({n: e for n, e in errors.items() if n not in warned})}")
    for parity in ("even", "odd"):
        half = {name: e for name, e in errors.items() if number_parity(name) == parity}
        if half:
            print(f"    {parity:4s} {summary(half)}")
    if worst:
        ranked = sorted(errors.items(), key=lambda item: -np.inf if item[1] is None else -item[1])[:worst]
        print("    worst: " + ", ".join(f"{name} {'none' if e is None else f'{e:.3f}'}" for name, e in ranked))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="only the images with these names (file name or stem: 142, 15.png, content1)")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"RRPS data not found at {args.data}")
    sets = {"content renders vs shipped dlib points": (selected(content_pairs(args.data), args.only)[:args.limit], 0),
            "style images vs Face-of-Art points": (selected(style_pairs(args.data), args.only)[:args.limit], 10)}
    for title, (pairs, worst) in sets.items():
        if not pairs:
            continue
        print(f"{title}: {len(pairs)} images evaluated")
        results = {name: evaluate(pairs, method) for name, method in METHODS.items()}
        for name, (errors, seconds, warned) in results.items():
            report(name, errors, seconds, warned, worst=worst)
        common = [image for image in results["plain dlib"][0] if all(r[0][image] is not None for r in results.values())]
        if common:
            means = ", ".join(f"{name} {np.mean([r[0][image] for image in common]):.4f}" for name, r in results.items())
            print(f"  on the {len(common)} images every method found: mean {means}")


if __name__ == "__main__":
    main()
