"""Step 1: photos become textured 3D heads (closed meshes with vertex colours), offline.

    python acquire.py photo.jpg                 # -> example/models/photo.obj + photo.landmarks.txt
    python acquire.py photos/ --force           # every image in a folder, redoing finished ones

The face's shape comes from MediaPipe's face mesh, the rest of the head (hair, ears, neck, back) from
the person's silhouette; dlib's 68 landmarks on the photo pick the 68 landmark vertices (dlib's order)
that correspondences.py uses. A photo that fails is reported in one line and the others go on; so are photos that
share a name (same.jpg, same.png), which would make one mesh.
"""
import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from utils.acquisition.head import HeadShape
from utils.acquisition.pipeline import AcquireSettings, acquire_file, output_paths
from utils.errors import InputError, cli_entry
from utils.io.files import sweep_temporaries
from utils.io import layout
from utils.io.images import list_images
from utils.settings import add_flags, flag_values

# ---- parameters -------------------------------------------------------------------------------------------
MODELS_DIR = layout.MODELS_DIR  # where <stem>.obj and <stem>.landmarks.txt are written
FORCE = False  # redo meshes that already exist
# How photos become meshes: AcquireSettings (utils/acquisition/pipeline.py: vertices, size limits, ...) and
# HeadShape (utils/acquisition/head.py: neck, depths of the front and back) hold every setting with its
# default, each with a flag. Write here only what you change, e.g. dict(vertices=30000), dict(back_depth=1.0).
ACQUIRE = dict()
SHAPE = dict()
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", type=Path, help="photo files or folders of photos")
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="folder for the meshes")
    parser.add_argument("--force", action="store_true", default=FORCE, help="redo finished meshes")
    add_flags(parser, AcquireSettings(**ACQUIRE), "mesh (AcquireSettings)", skip=("shape",))
    add_flags(parser, HeadShape(**SHAPE), "head shape (HeadShape)")
    args = parser.parse_args()
    settings = acquire_settings(args)
    if settings.vertices < 1000:
        parser.error("--vertices must be at least 1000")
    return args, settings


def acquire_settings(args):
    """AcquireSettings: the defaults, then ACQUIRE and SHAPE, then the flags given."""
    shape = HeadShape(**{**SHAPE, **flag_values(args, HeadShape)})
    return AcquireSettings(**{**ACQUIRE, **flag_values(args, AcquireSettings), "shape": shape})


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


def shared_stems(photos):
    """{stem: [photos]} for each stem that several photos share (same.jpg, same.png): their meshes would be one file,
    the last written silently replacing the others."""
    groups = defaultdict(list)
    for photo in photos:
        groups[photo.stem].append(photo)
    return {stem: group for stem, group in groups.items() if len(group) > 1}


@cli_entry
def main():
    args, settings = parse_args()
    sweep_temporaries(args.out, recursive=False, log=tqdm.write)  # left by a killed run
    photos = photo_list(args.photos)
    clashes = shared_stems(photos)
    for stem, group in clashes.items():  # which one the user meant is theirs to say: none is modelled
        tqdm.write(f"error: {', '.join(map(str, group))}: several photos named {stem!r} would make one mesh "
                   f"{args.out / stem}.obj; rename all but one")
    failed = sum(map(len, clashes.values()))
    for photo in tqdm([photo for photo in photos if photo.stem not in clashes], desc="acquiring", unit="photo"):
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
