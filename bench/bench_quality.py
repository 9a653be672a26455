"""How much of the exemplar's style the stylized heads carry, from the front and turned, on heads x Face-of-Art styles.

    .venv/bin/python -m bench.bench_quality                      # the dev heads (tuned on), vgg16-hed
    .venv/bin/python -m bench.bench_quality --held-out           # heads and styles not tuned on: report these
    .venv/bin/python -m bench.bench_quality --heads hopper 00319 --iterations 20 --all-round-iterations 20
    .venv/bin/python -m bench.bench_quality --pass-seeds 3         # the turned figures averaged over 3 seeds of 4c

Heads: RRPS reliefs by id (../shared/data/rrps/meshes), closed heads made by acquire.py from an RRPS render
("acq-<id>") or from a photo shipped in a package ("astronaut"), and the example's head ("hopper"); each with a
Face-of-Art style drawn with a seed (styles with their own landmarks). Content views are rendered and their
landmarks detected once into a work folder (acquire.py, rendering.py, correspondences.py; kept between runs).
Each pair goes through step 4 as run.py does it with the CPU profile: the views (4a), the reconstruction with
refinement (4b) and the 3D colour pass (4c). In the head region (the content's footprint, the exemplar's
landmark hull grown to take hair and neck):

- colour: sliced Wasserstein distance in Lab from the stylized views' head pixels to the exemplar's head pixels,
  as a ratio to the content views' distance (1: no change, 0: the exemplar's palette);
- texture: distance of Gram matrices of a judge network's layers (masked to the head), same ratio; the judge is
  never the network being optimised (EfficientNet-Lite0 judges vgg16-hed runs, VGG16-HED judges the others);
- colour per part (face: skin, eyes, nose, lips; hair: the rest of the head above the neck): the same ratio between
  the stylized views' part (cut from the warped landmarks, utils/style/regions.py) and the exemplar's same part;
- landmarks: mean distance of the warped landmarks to their targets, as a ratio to the start;
- consistency: mean colour difference between views at vertices seen in both (stylized; content's in brackets);
- seconds of the image-space step per pair and per iteration, wall and CPU / threads (what the step would
  take alone on the machine's cores when others load it), and the machine's load (``uptime``);
- style taken at -60 ... +60 degrees (and 90, -90, 180 on closed heads): renders of the input and of the final
  mesh turned about the head, each scored like the views (1 - the mean of its colour and texture ratios), and
  sides/front = mean(+-60) / mean(-20, 0, +20); the back (180) also against the exemplar's hair alone, what a
  view from behind shows;
- identity (information, not a target): distance of dlib's face descriptors, content view -> stylized view
  (same person below 0.6); mesh consistency: the views' consistency measured on the final mesh's renders;
  reconstruction: median reprojection error (px, worst view) and the share of flipped faces.

A contact sheet per pair goes to bench/results/quality/<network>/<mesh>_<style>.png: content | exemplar | stylized
views | render of the final mesh; and <mesh>_<style>_turned.png: the input (top) and the final mesh (bottom) at
each angle. Prints tables; asserts nothing.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.features import load_feature_network
from utils.geometry.reconstruct import ReconstructionSettings, reconstruct_mesh
from utils.io.files import atomic_path, save_json
from utils.io.images import save_image
from utils.io.layout import ContentFolder, model_landmarks, style_landmarks
from utils.io.mesh import load_mesh, to_pytorch3d
from utils.rendering.cameras import load_cameras
from utils.rendering.render import render_views
from utils.style.io import load_content_views, load_style, prepare_inputs
from utils.style.profiles import CPU_PROFILE
from utils.style.regions import REGIONS, content_footprint
from utils.settings import add_flags, changed, from_flags
from utils.style.stylize import match_part_palettes, stylize_views, stylized_part_masks
from utils.style.all_round import AllRoundSettings, style_all_round, view_cameras_around
from utils.geometry.smoothing import border_edges

ROOT = Path(__file__).resolve().parents[1]
RRPS = ROOT.parent / "shared" / "data" / "rrps"
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "rrps-bench-quality"
RESULTS = ROOT / "bench" / "results" / "quality"
JUDGE_OF = {"vgg16-hed": "efficientnet-lite0"}  # every other network is judged by vgg16-hed
TARGETS = {"colour": 0.45, "texture": 0.75, "landmarks": 0.5}
PART_TARGET = 0.45  # colour ratio of each part
PARTS = {"face": ("skin", "eyes", "nose", "lips"), "hair": ("hair",)}  # measured parts: REGIONS they gather
DIRECTIONS = 64  # random projections of the sliced Wasserstein distance
QUANTILES = 256


ACQUIRED = "acq-"  # a head name "acq-<id>": RRPS render <id>'s content1.jpg made into a closed head by acquire.py
PHOTOS = {"astronaut": lambda: __import__("skimage.data", fromlist=["astronaut"]).astronaut()}  # photo -> head
EXAMPLE_HEADS = {"hopper": ROOT / "example" / "models" / "hopper.obj"}  # closed heads shipped with the project
# the 3D pass is tuned on these (closed heads from photos, and reliefs); HELD_OUT are for reporting only
DEV_HEADS = ["hopper", "astronaut", "acq-00319", "acq-03204", "00319", "03204"]
HELD_OUT_HEADS = ["acq-13625", "acq-16466", "16466", "28829"]
TURN_ANGLES = (-60, -40, -20, 0, 20, 40, 60)  # degrees from the content's front, measured on every head
BACK_ANGLES = (90, -90, 180)  # and on closed heads


def head_pairs(heads, seed, avoid=()):
    """[(head name, style image path)]: each head with a Face-of-Art style drawn with ``seed``, none of them one of
    the styles the heads ``avoid`` (the tuning heads) draw with seed 0."""
    styles = sorted(p for p in (RRPS / "style").glob("*.png") if style_landmarks(p).is_file())
    tuned = {style for _, style in head_pairs(avoid, 0)} if avoid else set()
    return list(zip(heads, random.Random(seed).sample([s for s in styles if s not in tuned], len(heads))))


def head_mesh(name, work):
    """The mesh of head ``name`` in work/models (made on first use): an RRPS relief by id, an RRPS render or a
    package's photo made into a closed head by acquire.py, or a head shipped in example/models."""
    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    mesh = models / f"{name}.obj"
    if mesh.exists():
        return mesh
    if name in EXAMPLE_HEADS:
        for source in (EXAMPLE_HEADS[name], model_landmarks(EXAMPLE_HEADS[name].parent, name)):
            (models / source.name).symlink_to(source)
        return mesh
    if name.startswith(ACQUIRED) or name in PHOTOS:
        photo = work / "photos" / f"{name}.png"
        photo.parent.mkdir(exist_ok=True)
        if name in PHOTOS:
            save_image(photo, torch.from_numpy(PHOTOS[name]()).permute(2, 0, 1).float() / 255)
        else:
            shutil.copy(RRPS / "content" / name[len(ACQUIRED):] / "content1.jpg", photo.with_suffix(".jpg"))
            photo = photo.with_suffix(".jpg")
        subprocess.run([sys.executable, "acquire.py", str(photo), "--out", str(models)], cwd=ROOT, check=True,
                       capture_output=True, text=True)
        return mesh
    mesh.symlink_to(RRPS / "meshes" / f"{name}.obj")
    return mesh


def prepare_work(pairs, work):
    """Render the meshes and detect the content landmarks into ``work`` once (scripts skip what is there).
    pairs: [(mesh path in work/models, style image path)]."""
    (work / "style").mkdir(parents=True, exist_ok=True)
    for _, style in pairs:
        for source in (style, style_landmarks(style)):
            if not (work / "style" / source.name).exists():
                shutil.copy(source, work / "style" / source.name)
    commands = [["rendering.py", *[str(mesh) for mesh, _ in pairs], "--out", str(work / "content")],
                ["correspondences.py", "--content", str(work / "content"), "--style", str(work / "style"),
                 "--models", str(work / "models")]]
    for command in commands:
        subprocess.run([sys.executable, *command], cwd=ROOT, check=True, capture_output=True, text=True)


def lab_pixels(images, masks):
    """Lab colours of the masked pixels of all views: images (K, 3, H, W), masks (K, 1, H, W) -> (N, 3)."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(images.clamp(0, 1)).permute(0, 2, 3, 1).reshape(-1, 3)
    return lab[masks.permute(0, 2, 3, 1).reshape(-1) > 0.5]


def sliced_wasserstein(a, b, seed=0):
    """Sliced 1-Wasserstein distance between point sets a (N, 3), b (M, 3) (quantiles along random directions)."""
    directions = F.normalize(torch.randn(DIRECTIONS, a.shape[1], generator=torch.Generator().manual_seed(seed)), dim=1)
    levels = torch.linspace(0, 1, QUANTILES)
    qa = torch.quantile(a @ directions.T, levels, dim=0)
    qb = torch.quantile(b @ directions.T, levels, dim=0)
    return float((qa - qb).abs().mean())


def masked_grams(judge, images, masks):
    """Per judge layer (after the image itself), the Gram matrix of its features inside the masks: list of (C, C)."""
    with torch.no_grad():
        layers = judge(images)[1:]
    grams = []
    for layer in layers:
        weight = F.interpolate(masks, size=layer.shape[-2:], mode="area")
        flat, w = layer.flatten(2), weight.flatten(2)  # (K, C, P), (K, 1, P)
        grams.append(torch.einsum("kcp,kdp->cd", flat * w, flat) / w.sum().clamp(min=1))
    return grams


def gram_distance(first, second):
    """Mean over layers of the relative Frobenius distance of two lists of Gram matrices."""
    return float(sum((a - b).norm() / b.norm() for a, b in zip(first, second)) / len(first))


def part_colour_ratios(content, inputs, result):
    """Colour ratio per measured part (``PARTS``): the stylized views' part (``stylized_part_masks``: cut from the
    warped landmarks in their footprint) against the exemplar's same part, as a ratio to the content's part:
    {"colour_face": ..}."""
    def gathered(masks, names):  # (K, R, H, W) -> (K, 1, H, W)
        return masks[:, [REGIONS.index(n) for n in names]].sum(1, keepdim=True)

    stylized_parts = stylized_part_masks(result, content.background)
    ratios = {}
    for part, names in PARTS.items():
        exemplar = lab_pixels(inputs.style, gathered(inputs.style_parts, names))
        before = sliced_wasserstein(lab_pixels(content.images, gathered(inputs.content_parts, names)), exemplar)
        after = sliced_wasserstein(lab_pixels(result.stylized, gathered(stylized_parts, names)), exemplar)
        ratios[f"colour_{part}"] = after / before
    return ratios


def print_part_rows(rows):
    """The colour ratio per part, one line per pair and the mean, with the target."""
    names = [f"colour_{part}" for part in PARTS]
    print("  " + f"{'pair':16s} " + " ".join(f"{name:>12s}" for name in names))
    means = {name: sum(row[name] for row in rows.values()) / max(len(rows), 1) for name in names}
    for pair, row in {**rows, "mean": means}.items():
        print(f"  {pair:16s} " + " ".join(f"{row[name]:12.3f}" for name in names))
    worst = max((row[name] for row in rows.values() for name in names), default=0.0)
    print(f"  parts: worst {worst:.3f}, {'ok' if worst <= PART_TARGET else 'MISSED'} (each <= {PART_TARGET})")


def view_consistency(images, verts2d, visible):
    """Mean absolute colour difference between views 0 and 1 at the vertices both see: images (K, 3, S, S),
    verts2d (V, K, 2) pixel (x, y), visible (V, K)."""
    both = visible[:, 0] & visible[:, 1]
    size = images.shape[-1]
    grid = ((verts2d[both] + 0.5) / size * 2 - 1).transpose(0, 1).unsqueeze(1)  # (K, 1, P, 2)
    colours = F.grid_sample(images, grid.float(), align_corners=False)[:, :, 0]  # (K, 3, P)
    return float((colours[0] - colours[1]).abs().mean())


def stylize_views_cached(inputs, network, settings, cache):
    """Step 4a (``stylize_views``) with its (wall, CPU / threads) seconds, kept in ``cache``-<digest>.pt (of the
    settings, the network and the inputs' tensors) so that a rerun with other 3D-pass or reconstruction settings
    starts from the same views. A change to step 4a's code itself is not seen: delete the work folder's views/.
    The part palettes (``part_palette``, about a second) are matched after the cache, so that trying that setting
    does not rerun the optimisation."""
    optimised = {k: v for k, v in settings.as_dict().items() if k != "part_palette"}
    digest = hashlib.sha256(json.dumps([optimised, network.name], sort_keys=True).encode())
    for value in vars(inputs).values():
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    digest = digest.hexdigest()
    path = cache.with_name(f"{cache.name}-{digest[:12]}.pt")
    if path.is_file():
        result, seconds, cpu_seconds = torch.load(path, weights_only=False)
    else:
        start, cpu_start = time.time(), time.process_time()
        result = stylize_views(inputs, network, replace(settings, part_palette=0.0), progress=False)
        seconds, cpu_seconds = time.time() - start, (time.process_time() - cpu_start) / torch.get_num_threads()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            torch.save((result, seconds, cpu_seconds), temporary)
    start, cpu_start = time.time(), time.process_time()
    result = match_part_palettes(result, inputs, settings)
    return (result, seconds + time.time() - start,
            cpu_seconds + (time.process_time() - cpu_start) / torch.get_num_threads())


def stylized_mesh(folder, mesh_path, result, content, style, network, all_round, seeds=1, content_parts=None):
    """Steps 4b and 4c as run.py does them: the reconstructed mesh (refined) and the same with its colours
    styled all round (``all_round``: AllRoundSettings; ``content_parts``: the content views' part masks), once for
    each of ``seeds`` seeds of the pass (its seed, +1, ...). Returns (mesh in, reconstruction, [final mesh per seed],
    metrics: the first pass's seconds)."""
    cameras, P, size, views = load_cameras(ContentFolder(folder).cameras)
    mesh_in = load_mesh(mesh_path)
    start = time.time()
    reconstruction = reconstruct_mesh(mesh_in, cameras, P, size, result.stylized, result.verts2d_warped,
                                      content.visible, ReconstructionSettings(device="cpu"))
    recon, metrics = reconstruction.mesh, reconstruction.metrics
    metrics["reconstruction_s"] = time.time() - start
    if not all_round.enabled:
        return mesh_in, recon, [recon], metrics
    finals = []
    for extra in range(seeds):
        final, pass_result = style_all_round(mesh_in, recon, cameras, views, result.stylized, content.visible,
                                             style.channels_first, style.head, network,
                                             replace(all_round, seed=all_round.seed + extra), progress=False,
                                             back_mask=style.hair, content_parts=content_parts)
        finals.append(final)
        metrics.setdefault("all_round_s", pass_result.seconds)
    return mesh_in, recon, finals, metrics


def is_closed(mesh):
    """True when every edge of the mesh has two faces (a head with a back, not a relief)."""
    return not bool(border_edges(mesh.faces)[1].any())


def turned_style(mesh_in, meshes_out, views, style_image, style_mask, judge, angles, size=256):
    """"Style taken" at each angle by each stylized mesh of ``meshes_out`` (one per seed of the 3D pass): renders of
    the input and of the mesh turned by ``angles`` (degrees from the content's front), each scored in its footprint
    against the exemplar's head like the views (colour and texture ratios); taken = 1 - their mean. The input's
    renders and distances are made once for all the meshes. Returns ([{angle: taken} per mesh], (input renders,
    the first mesh's renders))."""
    cameras = view_cameras_around(views, list(angles), 0.0)
    exemplar = lab_pixels(style_image, style_mask)
    target_grams = masked_grams(judge, style_image, style_mask)

    def distances(mesh):
        """The mesh's renders (A, 3, S, S) and, per angle, (colour, texture) distances to the exemplar."""
        with torch.no_grad():
            images, zbuf = render_views(to_pytorch3d(mesh), cameras, size)
        masks = (zbuf[:, None] >= 0).float()
        return images, [(sliced_wasserstein(lab_pixels(images[k:k + 1], masks[k:k + 1]), exemplar),
                         gram_distance(masked_grams(judge, images[k:k + 1], masks[k:k + 1]), target_grams))
                        for k in range(len(angles))]

    before, input_distances = distances(mesh_in)
    taken_each, first = [], None
    for mesh_out in meshes_out:
        after, output_distances = distances(mesh_out)
        first = after if first is None else first
        taken_each.append({angle: 1 - (colour / colour_in + texture / texture_in) / 2 for angle, (colour, texture),
                           (colour_in, texture_in) in zip(angles, output_distances, input_distances)})
    return taken_each, (before, first)


def sides_over_front(taken):
    """Mean "style taken" at +-60 degrees over its mean from -20 to +20."""
    front = sum(taken[a] for a in (-20, 0, 20)) / 3
    return (taken[-60] + taken[60]) / 2 / front if front > 0 else float("nan")


def face_distance(first, second, first_landmarks, second_landmarks):
    """Distance of dlib's 128-d face descriptors of two images (3, H, W) in [0, 1] (same person below 0.6); where
    dlib's detector finds no face (a painted one), the box of the image's landmarks (68, 2) pixel (x, y)."""
    import dlib
    import face_recognition_models

    from models.landmark_detector import dlib_models

    predictor, detector, _ = dlib_models()
    encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    descriptors = []
    for image, landmarks in ((first, first_landmarks), (second, second_landmarks)):
        array = np.ascontiguousarray((image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        boxes = detector(array, 1)
        if not boxes:
            (left, top), (right, bottom) = landmarks.min(0).values.tolist(), landmarks.max(0).values.tolist()
            boxes = [dlib.rectangle(round(left), round(top), round(right), round(bottom))]
        descriptors.append(torch.tensor(list(encoder.compute_face_descriptor(array, predictor(array, boxes[0])))))
    return float((descriptors[0] - descriptors[1]).norm())


def mesh_consistency(mesh, folder, verts2d, visible):
    """``view_consistency`` of the final mesh rendered from the content cameras (a head coloured once in 3D)."""
    cameras, _, size, _ = load_cameras(ContentFolder(folder).cameras)
    with torch.no_grad():
        images, _ = render_views(to_pytorch3d(mesh), cameras, size)
    return view_consistency(images, verts2d, visible)


def square(image, size):
    """(3, H, W) -> (3, size, size): the longer side to ``size``, padded with white."""
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    resized = F.interpolate(image[None], size=(round(height * scale), round(width * scale)), mode="bilinear",
                            antialias=True, align_corners=False)[0]
    canvas = torch.ones(3, size, size)
    top, left = (size - resized.shape[1]) // 2, (size - resized.shape[2]) // 2
    canvas[:, top:top + resized.shape[1], left:left + resized.shape[2]] = resized
    return canvas


def measure_pair(mesh_path, style_path, network, judge, settings, all_round, work, sheet, pass_seeds=1):
    """Stylize one pair (steps 4a-4c) and measure it; writes its contact sheets (of the pass's first seed); returns
    {metric: value}, the turned figures averaged over ``pass_seeds`` seeds of the 3D pass."""
    folder = work / "content" / mesh_path.stem
    content = load_content_views(folder)
    style = load_style(work / "style" / style_path.name)
    inputs = prepare_inputs(content, style)
    result, seconds, cpu_seconds = stylize_views_cached(inputs, network, settings, work / "views" / sheet.stem)
    stylized_mask = content_footprint(result.stylized, content.background)
    exemplar = lab_pixels(inputs.style, inputs.style_mask)
    before = sliced_wasserstein(lab_pixels(content.images, inputs.content_mask), exemplar)
    after = sliced_wasserstein(lab_pixels(result.stylized, stylized_mask), exemplar)
    target_grams = masked_grams(judge, inputs.style, inputs.style_mask)
    texture_before = gram_distance(masked_grams(judge, content.images, inputs.content_mask), target_grams)
    texture_after = gram_distance(masked_grams(judge, result.stylized, stylized_mask), target_grams)
    start_error = (inputs.landmarks - inputs.targets).norm(dim=-1).mean()
    end_error = (result.landmarks_warped - inputs.targets).norm(dim=-1).mean()
    mesh_in, recon, finals, recon_metrics = stylized_mesh(folder, mesh_path, result, content, style, network,
                                                          all_round, pass_seeds, inputs.content_parts)
    final = finals[0]
    closed = is_closed(mesh_in)
    angles = TURN_ANGLES + (BACK_ANGLES if closed else ())
    middle = len(content.azimuths) // 2
    views = load_cameras(ContentFolder(folder).cameras)[3]
    runs, (turned_in, turned_out) = turned_style(mesh_in, finals, views, inputs.style[middle:middle + 1],
                                                 inputs.style_mask[middle:middle + 1], judge, angles)
    taken = {angle: sum(run[angle] for run in runs) / len(runs) for angle in angles}
    size = content.images.shape[-1]
    panels = [content.images[0], square(torch.from_numpy(style.image).permute(2, 0, 1).float(), size),
              *result.stylized, F.interpolate(turned_out[TURN_ANGLES.index(0)][None], size=size)[0]]
    save_image(sheet, torch.cat(panels, dim=2))
    save_image(sheet.with_name(sheet.stem + "_turned.png"),
               torch.cat([torch.cat(list(turned_in), 2), torch.cat(list(turned_out), 2)], 1))
    iterations = settings.iterations * settings.scales
    parts = part_colour_ratios(content, inputs, result)
    row = dict(**parts, colour=after / before, texture=texture_after / texture_before,
               landmarks=float(end_error / start_error),
               consistency=view_consistency(result.stylized, result.verts2d_warped, content.visible),
               content_consistency=view_consistency(content.images, content.verts2d, content.visible),
               mesh_consistency=mesh_consistency(final, folder, content.verts2d, content.visible),
               seconds=seconds, cpu_seconds=cpu_seconds, seconds_per_iteration=seconds / iterations,
               cpu_seconds_per_iteration=cpu_seconds / iterations,
               reconstruction_s=recon_metrics["reconstruction_s"], all_round_s=recon_metrics.get("all_round_s", 0.0),
               reprojection_median=max(recon_metrics["reprojection_px_median"]),
               flipped=recon_metrics["flipped_face_share"],
               identity=face_distance(content.images[middle], result.stylized[middle], content.landmarks[middle],
                                      result.landmarks_warped[middle]), closed=float(closed),
               sides_over_front=sides_over_front(taken))
    row.update({f"taken_{angle}": value for angle, value in taken.items()})
    if len(runs) > 1:  # how far the pass's seed alone moves the pair's figure
        each = [sides_over_front(run) for run in runs]
        row["sides_over_front_spread"] = max(each) - min(each)
    if closed:  # the back shows hair: also scored against the exemplar's hair, the pass's target there (back_from)
        hair = inputs.style_parts[middle:middle + 1, REGIONS.index("hair")][:, None]
        if float(hair.sum()) > 0:
            runs_hair = turned_style(mesh_in, finals, views, inputs.style[middle:middle + 1], hair, judge, (180,))[0]
            row["taken_180_hair"] = sum(run[180] for run in runs_hair) / len(runs_hair)
    return row


def print_rows(name, rows):
    """One line per pair and the mean, with the targets; then the turned views and the mesh figures."""
    print(f"\n{name}:\n  {'pair':20s} {'colour':>7s} {'texture':>7s} {'lmk':>6s} {'consist (content)':>17s} "
          f"{'s/pair wall':>11s} {'cpu':>6s} {'s/it wall':>9s} {'cpu':>5s}")
    rows = dict(rows)
    if rows:
        keys = set.intersection(*(set(r) for r in rows.values()))
        rows["mean"] = {k: sum(r[k] for r in rows.values()) / len(rows) for k in keys}
    for pair, row in rows.items():
        print(f"  {pair:20s} {row['colour']:7.3f} {row['texture']:7.3f} {row['landmarks']:6.3f} "
              f"{row['consistency']:8.3f} ({row['content_consistency']:.3f}) {row['seconds']:11.0f} "
              f"{row['cpu_seconds']:6.0f} {row['seconds_per_iteration']:9.2f} {row['cpu_seconds_per_iteration']:5.2f}")
    if rows:
        print("  targets: " + ", ".join(f"{k} {'ok' if rows['mean'][k] <= v else 'MISSED'} (<= {v})"
                                       for k, v in TARGETS.items()))
    angles = TURN_ANGLES + BACK_ANGLES
    print(f"\n  style taken (1 - mean of colour and texture ratios) at each angle, sides/front = mean(+-60) / "
          f"mean(-20..20); 180 hair: the back against the exemplar's hair:\n  {'pair':20s} "
          + " ".join(f"{a:>6d}" for a in angles) + f" {'side/fr':>7s} {'180 hair':>8s} {'seeds spread':>12s}")
    for pair, row in rows.items():
        cells = [f"{row[f'taken_{a}']:6.2f}" if f"taken_{a}" in row else f"{'-':>6s}" for a in angles]
        hair = f"{row['taken_180_hair']:8.2f}" if "taken_180_hair" in row else f"{'-':>8s}"
        spread = f"{row['sides_over_front_spread']:12.3f}" if "sides_over_front_spread" in row else f"{'-':>12s}"
        print(f"  {pair:20s} " + " ".join(cells) + f" {row['sides_over_front']:7.2f} {hair} {spread}")
    print(f"\n  {'pair':20s} {'mesh consist':>12s} {'reproj med px':>13s} {'flipped %':>9s} {'identity':>8s} "
          f"{'recon s':>7s} {'3D pass s':>9s} {'total s':>7s}")
    for pair, row in rows.items():
        total = row["seconds"] + row["reconstruction_s"] + row["all_round_s"]
        print(f"  {pair:20s} {row['mesh_consistency']:12.3f} {row['reprojection_median']:13.2f} "
              f"{100 * row['flipped']:9.2f} {row['identity']:8.2f} {row['reconstruction_s']:7.0f} "
              f"{row['all_round_s']:9.0f} {total:7.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", nargs="+", default=None,
                        help="RRPS ids (reliefs), acq-<id> (RRPS render made a head by acquire.py), "
                             f"{', '.join([*PHOTOS, *EXAMPLE_HEADS])}")
    parser.add_argument("--held-out", action="store_true",
                        help=f"styles not tuned on (drawn with --style-seed + 1, none of the dev heads'), and by "
                             f"default the heads not tuned on ({' '.join(HELD_OUT_HEADS)})")
    parser.add_argument("--only", nargs="+", default=None,
                        help="measure only these of the heads (their styles drawn as with all of them)")
    parser.add_argument("--style-seed", type=int, default=0, help="seed of the styles drawn for the heads")
    parser.add_argument("--networks", nargs="+", default=["vgg16-hed"])
    parser.add_argument("--work", type=Path, default=WORK, help="renders and landmarks, kept between runs")
    parser.add_argument("--pass-seeds", type=int, default=1,
                        help="run the 3D pass with this many seeds and average its turned figures (the seed alone "
                             "moves a pair's sides/front by up to 0.02; about 40 s a pair a seed)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    add_flags(parser, CPU_PROFILE, "style transfer (the CPU profile; e.g. --iterations 80 --image-size 320)")
    add_flags(parser, AllRoundSettings(), "the 3D pass (AllRoundSettings)", prefix="all-round-")
    args = parser.parse_args()
    settings = from_flags(args, CPU_PROFILE)
    all_round = from_flags(args, AllRoundSettings(), prefix="all-round-")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1, 5 min), cores {os.cpu_count()}, "
          f"threads {torch.get_num_threads()}; settings {changed(CPU_PROFILE, settings) or 'CPU profile'}; "
          f"3D pass {changed(AllRoundSettings(), all_round) or 'defaults'}")
    heads = args.heads or (HELD_OUT_HEADS if args.held_out else DEV_HEADS)
    seed = args.style_seed + 1 if args.held_out else args.style_seed
    avoid = DEV_HEADS if args.held_out else ()
    pairs = [(head_mesh(head, args.work), style) for head, style in head_pairs(heads, seed, avoid)
             if args.only is None or head in args.only]
    prepare_work(pairs, args.work)
    summary = {}
    for name in args.networks:
        network = load_feature_network(name)
        judge = load_feature_network(JUDGE_OF.get(name, "vgg16-hed"), verbose=False)
        print(f"judge: {judge.name}")
        rows = {}
        for mesh, style in pairs:
            label = f"{mesh.stem} x {style.stem}"
            sheet = args.results / name / f"{mesh.stem}_{style.stem}.png"
            rows[label] = measure_pair(mesh, style, network, judge, settings, all_round, args.work, sheet,
                                       args.pass_seeds)
            print(f"  {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[label].items()), flush=True)
            summary[network.name] = rows
            save_json(args.results / f"quality_{'_'.join(args.networks)}.json",
                      dict(settings=settings.as_dict(), all_round=all_round.as_dict(), results=summary))
        print_rows(network.name, rows)
        print_part_rows(rows)
    print(f"\nload at the end: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}; sheets in {args.results}")


if __name__ == "__main__":
    main()
