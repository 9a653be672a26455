"""Model acquisition (acquire.py's library) against known heads: the RRPS content renders. Prints; asserts nothing.

    .venv/bin/python -m bench.bench_acquire [--data ../shared/data/rrps] [--only 00319 ...] [--front-depth 0.5 ...]

Each content/<id>/content1.jpg is a render of the known mesh meshes/<id>.obj through the 3x4 matrix H1.txt
(--view 2: content2.jpg and H2.txt, the other side; the head shape was tuned on view 1).
The head acquired from the render is aligned to the known mesh by the similarity transform (Umeyama) that best
maps its 68 landmark vertices onto the known mesh's landmark points (the front-most surface under the render's
dlib landmarks, content_pts<k>.txt). Per mesh and on average:
  face      mean distance of the acquired face's vertices (inside MediaPipe's face oval) to the known surface,
            over the outer-eye-corner distance (target <= 0.05);
  IoU       silhouette overlap of the two heads rendered at azimuth -30, 0, +30 degrees (target >= 0.85);
  lm        dlib's landmarks (the pipeline's detector) on a frontal render of the acquired mesh against the
            projections of its landmark vertices, i.e. dlib's landmarks on the photo (target <= 0.03);
  bad       faces that are degenerate, wound against a neighbour or flipped against their neighbours (< 0.5%);
  sharp     edges of the front sheet where the surface folds by more than 60 degrees (information: fins along the
            face's outline, one grid row apart, raised it; a face's nose and lips keep a few);
  s         seconds per photo (the machine's load average is printed: it is shared).
A picture per mesh goes to bench/results/acquire/<id>_view<k>.png: the photo and the acquired head at -60, -30, 0, +30, +60
and 180 degrees; below, the silhouettes at -30, 0, +30 (green: acquired only, red: known only, yellow: both).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from models.landmark_detector import checks_by_eye, detect_landmarks
from utils.acquisition.head import HeadShape
from utils.geometry.metrics import folded_edge_share
from utils.acquisition.photo import load_photo
from utils.acquisition.pipeline import AcquireSettings, acquire_head
from utils.io.landmarks import OUTER_EYE_CORNERS, landmark_error, load_landmarks
from utils.io.images import save_image
from utils.io.mesh import Mesh, load_mesh, to_pytorch3d
from utils.rendering.cameras import frame_mesh, make_cameras, project, world_to_pixel
from utils.rendering.render import render_views
from utils.settings import add_flags, from_flags

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "rrps"
AZIMUTHS = (-30.0, 0.0, 30.0)
TURNTABLE = (-60.0, -30.0, 0.0, 30.0, 60.0, 180.0)  # the acquired head's views in the picture
RESULTS = ROOT / "bench" / "results" / "acquire"
RENDER_SIZE = 512
FOV = 15.0
SHARP_DEGREES = 60.0  # a fold sharper than this counts in "sharp"
SURFACE_SUBDIVISION = 3  # the known surface is sampled at this many steps per triangle edge (1e6 points)


def known_landmarks(mesh, matrix, points, radius=2.0):
    """(68, 3) points of the known mesh under the 2D landmarks (68, 2): the front-most vertex within ``radius`` px."""
    verts = mesh.verts.double()
    pixels, depth = project(verts, torch.from_numpy(matrix)[None])
    pixels, depth = pixels[:, 0].numpy(), depth[:, 0].numpy()
    tree = cKDTree(pixels)
    out = []
    for point in points:
        near = tree.query_ball_point(point, radius) or [tree.query(point)[1]]
        out.append(verts[near[int(np.argmin(depth[near]))]].numpy())
    return np.array(out)


def similarity(source, target):
    """(scale, R (3, 3), t (3,)) minimising |scale R source + t - target|^2 over point pairs (N, 3) (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s / len(s))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sigma) @ d) / (s ** 2).sum(1).mean())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def surface_samples(mesh, steps=SURFACE_SUBDIVISION):
    """(N, 3) points spread over every triangle at barycentric steps of 1/steps (vertices included)."""
    corners = mesh.verts.double()[mesh.faces].numpy()  # (F, 3, 3)
    weights = [(i / steps, j / steps, 1 - (i + j) / steps) for i in range(steps + 1) for j in range(steps + 1 - i)]
    return np.concatenate([np.einsum("k,fkd->fd", np.array(w), corners) for w in weights])


def silhouettes(meshes, azimuths):
    """(M, K, S, S) bool masks of meshes rendered from the same K cameras, framed on the first mesh."""
    at, distance = frame_mesh(torch.cat([m.verts for m in meshes]), FOV, margin=1.3)
    cameras = make_cameras(list(azimuths), [0.0] * len(azimuths), distance, FOV, at)
    with torch.no_grad():
        return [render_views(to_pytorch3d(m), cameras, RENDER_SIZE)[1] > 0 for m in meshes]


def bad_faces(mesh):
    """Fraction of faces that are degenerate (area under 1e-3 of the median), wound against a neighbour (an edge
    used twice the same way) or flipped (the normal opposite to the mean normal of the faces across its edges)."""
    faces = mesh.faces.numpy()
    corners = mesh.verts.double()[mesh.faces].numpy()
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    area = np.linalg.norm(normals, axis=1) / 2
    degenerate = area < 1e-3 * np.median(area)
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    _, inverse, counts = np.unique(directed, axis=0, return_inverse=True, return_counts=True)
    twisted = (counts[inverse.ravel()] > 1).reshape(-1, 3).any(1)
    _, edge_id = np.unique(np.sort(directed, axis=1), axis=0, return_inverse=True)
    edge_id = edge_id.ravel()
    edge_normal = np.zeros((edge_id.max() + 1, 3))
    np.add.at(edge_normal, edge_id, np.repeat(normals, 3, axis=0))
    around = edge_normal[edge_id].reshape(-1, 3, 3).sum(1) - 3 * normals  # the neighbours' normals, summed
    flipped = (normals * around).sum(1) < 0
    return float((degenerate | twisted | flipped).mean())


def frontal_landmark_error(head):
    """dlib (the pipeline's detector) on a frontal render of the acquired mesh vs its landmark vertices' projections."""
    at, distance = frame_mesh(head.mesh.verts, FOV)
    cameras = make_cameras([0.0], [0.0], distance, FOV, at)
    with torch.no_grad():
        image, _ = render_views(to_pytorch3d(head.mesh), cameras, RENDER_SIZE)
    pixels, _ = project(head.mesh.verts[torch.from_numpy(head.landmark_vertices)], world_to_pixel(cameras, RENDER_SIZE))
    with checks_by_eye():
        detected = detect_landmarks(image[0])
    return landmark_error(detected, pixels[:, 0].numpy())


def save_picture(path, photo, head, masks, size=256):
    """The photo, the acquired head from the TURNTABLE azimuths, and the silhouette overlaps (see the docstring)."""
    at, distance = frame_mesh(head.mesh.verts, FOV, margin=1.2)
    cameras = make_cameras(list(TURNTABLE), [0.0] * len(TURNTABLE), distance, FOV, at)
    with torch.no_grad():
        views, _ = render_views(to_pytorch3d(head.mesh), cameras, size)
    photo = torch.nn.functional.interpolate(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, (size, size))
    top = torch.cat([photo[0], *views], dim=2)
    overlaps = [torch.stack([known, acquired, torch.zeros_like(known)]).float() for acquired, known in zip(*masks)]
    overlaps = torch.nn.functional.interpolate(torch.stack(overlaps), (size, size))  # red + green: yellow
    bottom = torch.cat([*overlaps, torch.ones(3, size, top.shape[2] - len(overlaps) * size)], dim=2)
    save_image(path, torch.cat([top, bottom], dim=1))


def evaluate(case, settings, pictures, view=1):
    """The figures of one RRPS head (see the module docstring) acquired from its render ``view`` (1 or 2) as a
    dict; its picture goes to ``pictures``."""
    content = case.parent.parent / "content" / case.stem
    photo, _ = load_photo(content / f"content{view}.jpg")
    start = time.perf_counter()
    head = acquire_head(photo, case.stem, settings)
    seconds = time.perf_counter() - start
    known = load_mesh(case)
    target = known_landmarks(known, np.loadtxt(content / f"H{view}.txt"),
                             load_landmarks(content / f"content_pts{view}.txt"))
    source = head.mesh.verts[torch.from_numpy(head.landmark_vertices)].double().numpy()
    scale, rotation, shift = similarity(source, target)
    aligned = scale * head.mesh.verts.double().numpy() @ rotation.T + shift
    eye_distance = float(np.linalg.norm(target[OUTER_EYE_CORNERS[1]] - target[OUTER_EYE_CORNERS[0]]))
    distance, _ = cKDTree(surface_samples(known)).query(aligned[head.on_face])
    known_in_acquired = (known.verts.double().numpy() - shift) @ rotation / scale  # the inverse similarity
    masks = silhouettes([head.mesh, Mesh(torch.tensor(known_in_acquired, dtype=torch.float32), known.faces)],
                        AZIMUTHS)
    iou = [float((a & b).sum() / (a | b).sum()) for a, b in zip(*masks)]
    save_picture(pictures / f"{case.stem}_view{view}.png", photo, head, masks)
    return {"face": float(distance.mean()) / eye_distance, "iou": iou, "lm": frontal_landmark_error(head),
            "bad": bad_faces(head.mesh), "sharp": folded_edge_share(head.mesh.verts, head.front_faces(), SHARP_DEGREES),
            "s": seconds, "V": len(head.mesh.verts)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--only", nargs="*", help="mesh ids")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the pictures")
    parser.add_argument("--view", type=int, choices=(1, 2), default=1,
                        help="which render to acquire from: content1.jpg (tuned on) or content2.jpg (held out)")
    add_flags(parser, AcquireSettings(), "acquisition (AcquireSettings)", skip=("shape",))
    add_flags(parser, HeadShape(), "head shape (HeadShape)")
    args = parser.parse_args()
    cases = sorted((args.data / "meshes").glob("*.obj"))
    if args.only:
        cases = [c for c in cases if c.stem in args.only]
    if not cases:
        sys.exit(f"no meshes in {args.data / 'meshes'}; pass --data")
    settings = from_flags(args, AcquireSettings(shape=from_flags(args, HeadShape())))
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'id':>6} {'face':>6} {'IoU-30':>7} {'IoU0':>6} {'IoU+30':>7} {'lm':>6} {'bad%':>6} {'sharp%':>7} "
          f"{'s':>6} {'V':>6}")
    rows = []
    for case in cases:
        row = evaluate(case, settings, args.results, args.view)
        rows.append(row)
        print(f"{case.stem:>6} {row['face']:6.3f} {row['iou'][0]:7.3f} {row['iou'][1]:6.3f} {row['iou'][2]:7.3f} "
              f"{row['lm']:6.3f} {100 * row['bad']:6.2f} {100 * row['sharp']:7.2f} {row['s']:6.1f} {row['V']:6d}",
              flush=True)
    mean = {k: np.mean([r[k] for r in rows], axis=0) for k in ("face", "iou", "lm", "bad", "sharp", "s")}
    print(f"{'mean':>6} {mean['face']:6.3f} {mean['iou'][0]:7.3f} {mean['iou'][1]:6.3f} {mean['iou'][2]:7.3f} "
          f"{mean['lm']:6.3f} {100 * mean['bad']:6.2f} {100 * mean['sharp']:7.2f} {mean['s']:6.1f}")
    print("targets: face <= 0.05, IoU >= 0.85, lm <= 0.03, bad < 0.5%, s < 30")
    print(f"pictures: {args.results}/<id>_view{args.view}.png")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
