"""Step 3 of RRPS: 68 facial landmarks for every content view and every style exemplar.

    python correspondences.py                  # example/content/*/view_<k>.png and example/style/*
    python correspondences.py --only hopper astronaut_popart --force
    python correspondences.py --edit            # fix landmarks by dragging them, in a browser (127.0.0.1)

Content view k of mesh <name> gets example/content/<name>/landmarks_<k>.txt: the projections of the mesh's
landmark vertices when example/models/<name>.landmarks.txt lists them (exact), else dlib's detection.
A style image <style>.png|jpg without <style>.txt gets one from dlib. Files are 68 lines "x y" (pixels,
origin at the top-left pixel centre). Existing files are checked and kept unless --force. Overlays for
checking by eye go to <folder>/overlays/; detections that need that check (a weak face detection, or
predictions that disagree) are listed with a warning and recorded in <folder>/overlays/check_by_eye.json;
--edit serves a page to look at them (flagged first) and drag wrong points into place (utils/landmarks/editor.py).
"""
import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.landmark_detector import checks_by_eye, detect_landmarks
from utils.acquisition.face import sees_a_face
from utils.errors import InputError, cli_entry
from utils.io.files import check_writable, is_stale, sweep_temporaries
from utils.io import layout
from utils.io.images import list_images, read_image_downscaled, to_copy_pixels, to_file_pixels
from utils.io.landmarks import (load_landmark_vertices, load_landmarks, project_landmark_vertices,
                             save_landmarks)
from utils.io.layout import content_folders, model_landmarks, style_landmarks
from utils.landmarks.editor import find_items, record_checks, serve
from utils.report.plots import save_keypoint_overlay

# ---- parameters -------------------------------------------------------------------------------------------
CONTENT_DIR = layout.CONTENT_DIR  # one folder per mesh, written by rendering.py
STYLE_DIR = layout.STYLE_DIR  # style exemplars; <style>.txt beside each image
MODELS_DIR = layout.MODELS_DIR  # where <name>.landmarks.txt (68 vertex indices) may sit beside the mesh
WORKING_MAX_SIDE = 2048  # larger images are read downscaled (detection works below 800 px anyway): a 6000 px
# style image took 9.5 GB read whole; points are mapped back to the file's pixels
FORCE = False  # re-detect (and overwrite) landmark files that exist and are valid
OUTPUT_DIR = layout.OUTPUT_DIR  # run.py's output; an edit marks the pairs made with the edited landmarks incomplete
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=CONTENT_DIR, help="content root (one folder per mesh)")
    parser.add_argument("--style", default=STYLE_DIR, help="style image folder")
    parser.add_argument("--models", default=MODELS_DIR, help="folder with <name>.landmarks.txt vertex lists")
    parser.add_argument("--force", action="store_true", default=FORCE, help="re-detect existing landmark files")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these meshes and/or style images (stems)")
    parser.add_argument("--edit", nargs="*", metavar="NAME",
                        help="serve the landmark editor on 127.0.0.1 (optionally only these styles or meshes)")
    parser.add_argument("--output", default=OUTPUT_DIR, help="run.py's output folder (for --edit)")
    return parser.parse_args()


def content_jobs(content_root, models_dir, only):
    """[(view image, landmark file, mesh points (68, 2) or None)] for every content view."""
    views = {folder: folder.views() for folder in content_folders(content_root)}
    if not any(views.values()):
        raise InputError(f"{content_root}: no content views (view_<k>.png) found; run rendering.py first")
    jobs = []
    for folder, folder_views in views.items():
        if only and folder.name not in only:
            continue
        mesh_points = mesh_landmarks(folder, model_landmarks(models_dir, folder.name))
        for k, view in folder_views.items():
            if mesh_points is not None and k >= len(mesh_points):
                raise InputError(f"{view}: {folder.verts2d.name} has only {len(mesh_points)} views; "
                                 "re-run rendering.py")
            jobs.append((view, folder.landmarks(k), None if mesh_points is None else mesh_points[k]))
    return jobs


def mesh_landmarks(folder, vertex_file):
    """(K, 68, 2) projections of the mesh's landmark vertices, or None when the mesh lists none.
    folder: ``ContentFolder``."""
    if not vertex_file.is_file():
        return None
    verts2d_file = folder.verts2d
    verts2d = np.load(verts2d_file) if verts2d_file.is_file() else np.zeros(0)
    if verts2d.ndim != 3 or verts2d.shape[2] != 2:
        raise InputError(f"{verts2d_file}: missing or not (V, K, 2) vertex projections; re-run rendering.py")
    return project_landmark_vertices(verts2d, load_landmark_vertices(vertex_file, len(verts2d)))


def style_jobs(style_dir, only):
    """[(style image, landmark file, None)]; two images with one name (a.png, a.jpg) are an InputError."""
    images = [p for p in list_images(style_dir) if not only or p.stem in only]
    repeated = [stem for stem, count in Counter(p.stem for p in images).items() if count > 1]
    if repeated:
        raise InputError(f"{Path(style_dir) / repeated[0]}.*: several style images named {repeated[0]!r} "
                         f"would share one landmark file; rename or remove all but one")
    return [(image, style_landmarks(image), None) for image in images]


def landmarks_for(image_path, landmark_path, mesh_points, force):
    """Make sure ``landmark_path`` holds valid landmarks for the image (overlay redrawn when new or stale).

    Returns how: "kept", "mesh" or "detected".
    """
    image, scale, file_size = read_image_downscaled(image_path, WORKING_MAX_SIDE)  # bounded memory
    if landmark_path.exists() and not force:
        points, how = load_landmarks(landmark_path, image_size=file_size), "kept"
    elif mesh_points is not None:
        points, how = mesh_points, "mesh"
    else:
        points = detect_landmarks(image, image_path, landmark_path, sees_a_face)  # no face: refused as acquire.py does
        points, how = to_file_pixels(points, scale), "detected"
    if how != "kept":
        save_landmarks(landmark_path, points)
    overlay = layout.landmark_overlay(landmark_path)
    if how != "kept" or is_stale(overlay, [landmark_path]):
        save_keypoint_overlay(overlay, image, {f"{landmark_path.name} ({how})": to_copy_pixels(points, scale)})
    return how


@cli_entry
def main():
    args = parse_args()
    if args.edit is not None:
        return serve(find_items(args.content, args.style, set(args.edit)), args.output, WORKING_MAX_SIDE)
    only = set(args.only or [])
    jobs = content_jobs(args.content, args.models, only) + style_jobs(args.style, only)
    if not Path(args.style).is_dir():
        print(f"{args.style}: no such style folder, so no style landmarks to make (nothing to do there)")
    if not jobs:
        raise InputError(f"--only {' '.join(sorted(only))}: no content folder or style image has that name")
    for folder in sorted({landmark_path.parent for _, landmark_path, _ in jobs}):
        check_writable(folder, "--style" if folder == Path(args.style) else "--content")
        sweep_temporaries(folder, log=tqdm.write)  # left by a killed run (its overlays/ included)
    counts, failures, to_check = Counter(), [], 0
    for image_path, landmark_path, mesh_points in tqdm(jobs, desc="landmarks", unit="image"):
        how = None
        with checks_by_eye() as checks:
            try:
                how = landmarks_for(image_path, landmark_path, mesh_points, args.force)
                counts[how] += 1
            except InputError as err:
                failures.append(err)
                tqdm.write(f"error: {err}")
        if how in ("mesh", "detected"):
            record_checks(landmark_path, checks)
        for message in checks:
            tqdm.write(f"warning: {message}")
        to_check += len(checks)
    check = f"; {to_check} to check by eye (warnings above)" if to_check else ""
    print(f"landmarks: {counts['mesh']} from mesh vertices, {counts['detected']} detected, "
          f"{counts['kept']} kept, {len(failures)} failed{check}")
    if failures:
        raise InputError(f"{len(failures)} image(s) have no landmarks (listed above); fix them and re-run")


if __name__ == "__main__":
    main()
