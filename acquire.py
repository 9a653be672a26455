"""Step 1: photos become textured 3D heads (closed meshes with vertex colours), offline.

    python acquire.py photo.jpg                 # -> example/models/photo.obj + photo.landmarks.txt
    python acquire.py photos/ --force           # every image in a folder, redoing finished ones

The face's shape comes from MediaPipe's face mesh, the rest of the head (hair, ears, neck, back) from
the person's silhouette; dlib's 68 landmarks on the photo pick the 68 landmark vertices (dlib's order)
that correspondences.py uses. A photo that fails is reported in one line and the others go on.
"""
import argparse
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

from utils.acquisition.head import HeadShape
from utils.acquisition.pipeline import AcquireSettings, acquire_file, output_paths
from utils.errors import InputError, cli_entry
from utils.io.images import list_images

# ---- parameters -------------------------------------------------------------------------------------------
MODELS_DIR = "example/models"  # where <stem>.obj and <stem>.landmarks.txt are written
VERTICES = 16000  # about this many front-sheet vertices (the closed head has nearly twice as many)
HEIGHT = 2.0  # the mesh's height in scene units (y up, face toward +z)
MAX_SIDE = 1024  # larger photos are downscaled first (pixels)
MIN_SIDE = 128  # smaller photos are refused (pixels)
NECK_LENGTH = 0.45  # the neck is cut this many face heights below the chin
BACK_DEPTH = 1.25  # depth of the back of the head over a sphere's
FORCE = False  # redo meshes that already exist
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", type=Path, help="photo files or folders of photos")
    parser.add_argument("--out", type=Path, default=Path(MODELS_DIR), help="folder for the meshes")
    parser.add_argument("--vertices", type=int, default=VERTICES)
    parser.add_argument("--height", type=float, default=HEIGHT)
    parser.add_argument("--max-side", type=int, default=MAX_SIDE)
    parser.add_argument("--min-side", type=int, default=MIN_SIDE)
    parser.add_argument("--neck-length", type=float, default=NECK_LENGTH)
    parser.add_argument("--back-depth", type=float, default=BACK_DEPTH)
    parser.add_argument("--force", action="store_true", default=FORCE, help="redo finished meshes")
    args = parser.parse_args()
    if args.vertices < 1000:
        parser.error("--vertices must be at least 1000")
    return args


def photo_list(paths):
    """The photo paths named, or found directly inside the named folders (each a list of its images).

    A path that does not exist stays in the list: acquiring it reports it in one line like any bad photo.
    """
    photos = []
    for path in paths:
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise InputError(f"{path}: no images (.png, .jpg, ...) in this folder")
            photos += found
        else:
            photos.append(path)
    return photos


@cli_entry
def main():
    args = parse_args()
    settings = AcquireSettings(vertices=args.vertices, height=args.height, min_side=args.min_side,
                               max_side=args.max_side,
                               shape=HeadShape(neck_length=args.neck_length, back_depth=args.back_depth))
    failed = 0
    for photo in tqdm(photo_list(args.photos), desc="acquiring", unit="photo"):
        mesh_path, landmark_path = output_paths(photo, args.out)
        if not args.force and mesh_path.is_file() and landmark_path.is_file():
            tqdm.write(f"{photo.stem}: {mesh_path} exists (--force to redo)")
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                head = acquire_file(photo, args.out, settings)
        except InputError as err:
            tqdm.write(f"error: {err}")
            failed += 1
            continue
        for line in head.notes + [str(w.message) for w in caught]:
            tqdm.write(f"note: {line}")
        tqdm.write(f"{photo.stem}: {mesh_path} ({len(head.mesh.verts)} vertices, "
                   f"{100 * head.seen.mean():.0f}% coloured from the photo)")
    if failed:
        print(f"{failed} photo(s) failed; see the lines above", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
