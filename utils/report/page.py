"""The run's report: output/index.html, one static page to look at every (mesh, style) pair afterwards.

For each pair folder output/<name>/<style>/ the page shows the content views, the style exemplar with its
landmarks, the stylized (and unwarped) views, turntable strips of the stylized mesh before and after smoothing
(rendered here with the project's renderer, cached beside the meshes) and the figures of metrics.json.
Static files only: relative links, no network, so the folder can be opened offline or copied. The one script,
viewer.js, turns each pair's meshes (.glb, see ``glb``) in a 3D viewer (model-viewer, vendored) when the pair
scrolls into view; the turntable pictures stay as the fallback.
Anything missing is shown as missing; the page is built for incomplete and failed pairs too.
"""
import html
import json
import math
import os
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from utils.batch import COMPLETE_MARKER, is_complete
from utils.rendering.cameras import frame_mesh, make_cameras
from utils.device import resolve_device
from utils.errors import InputError
from utils.io.files import atomic_path, is_stale, load_json, save_text
from utils.io.images import list_images, read_image_array, save_image, to_uint8_array
from utils.io.landmarks import load_landmarks
from utils.io.mesh import load_mesh, to_pytorch3d
from utils.report.glb import glb_key, glb_paths, glb_script_path, input_mesh_path, update_glbs
from utils.report.plots import save_keypoint_overlay
from utils.rendering.render import render_views

REPORT_NAME = "index.html"
OVERVIEW_NAME = "overview.png"  # one picture of the first finished pair (the README shows the example's)
OVERVIEW_HEIGHT = 256
ASSETS_DIR = "report_files"  # landmark overlays the report draws itself, inside the output folder
FOLDED_OVER = 4  # a nested dict of metrics or parameters with more leaves than this is shown collapsed
OVERLAY_SIZE = 200  # pixels, longer side of the pictures the report draws landmarks on
TURNTABLES = {"mesh.obj": "turntable.png", "mesh_smooth.obj": "turntable_smooth.png"}  # mesh -> strip
VIEWER_FILES = (Path(__file__).with_name("viewer.js"), Path(__file__).parent / "vendor" / "model-viewer-umd.min.js")
VIEWER_CAPTIONS = {"input": "input mesh", "mesh.obj": "stylized", "mesh_smooth.obj": "stylized, smoothed"}
INTERMEDIATE_PLOTS = ("intermediate/loss_curves.png", "intermediate/recon_loss.png")
PAIR_FILES = ("mesh.obj", "mesh_smooth.obj", "metrics.json", "params.json", "verts2d_warped.npy",
              "turntable.gif", "turntable_smooth.gif", "intermediate/")


@dataclass(frozen=True)
class TurntableSettings:
    """How the stylized meshes are turned around the head: K azimuths (degrees) at one elevation, one
    headlight (``light``: diffuse share), framed from the front with ``margin``; an animated GIF beside
    each strip when ``gif``."""

    azimuths: Tuple[float, ...] = tuple(np.linspace(-60.0, 60.0, 8).tolist())  # degrees (full circle: -180 ... 135)
    elevation: float = 0.0
    image_size: int = 256
    fov: float = 15.0
    margin: float = 1.2
    light: float = 0.5
    gif: bool = True
    frame_ms: int = 150


@dataclass
class Pair:
    """One (content, style) pair: its output folder, inputs and state ("complete", "done", "incomplete",
    "failed"); ``reason`` says why a failed pair failed."""

    content: str
    style: str
    folder: Path
    content_dir: Path
    style_image: Optional[Path]
    status: str
    reason: str = ""
    notes: list = field(default_factory=list)


# ---- finding the pairs ------------------------------------------------------------------------------------

def find_pairs(output_root, content_root, style_root, failures=None):
    """Every pair folder output_root/<name>/<style>/, plus the pairs in ``failures`` that have none.

    failures: {(content, style): reason} for pairs a batch reported as failed (None: none known).
    Returns a list of ``Pair`` sorted by content then style.
    """
    output_root, failures = Path(output_root), dict(failures or {})
    found = {(folder.parent.name, folder.name) for folder in _subfolders(output_root)
             for folder in _subfolders(folder) if folder.parent.name != ASSETS_DIR}
    styles = {path.stem: path for path in list_images(style_root)}
    pairs = []
    for content, style in sorted(found | set(failures)):
        folder = output_root / content / style
        status = pair_status(folder, (content, style) in failures)
        pairs.append(Pair(content, style, folder, Path(content_root) / content, styles.get(style), status,
                          failures.get((content, style), "")))
    return pairs


def _subfolders(folder):
    """Sorted visible sub-folders of ``folder`` (none when it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def pair_status(folder, failed=False):
    """"complete" (completion marker written), "failed" (reported so), "done" (mesh.obj written) or "incomplete"."""
    if is_complete(folder):
        return "complete"
    if failed:
        return "failed"
    return "done" if (folder / "mesh.obj").is_file() else "incomplete"


def view_indices(pair):
    """The view numbers k seen in the content views or the stylized outputs ([0] when there are none)."""
    patterns = [(pair.content_dir, "view_"), (pair.folder, "stylized_"), (pair.folder, "unwarped_")]
    indices = {int(path.stem[len(prefix):]) for folder, prefix in patterns
               for path in list_images(folder) if path.stem[len(prefix):].isdigit() and path.stem.startswith(prefix)}
    return sorted(indices) or [0]


# ---- pictures the report makes ----------------------------------------------------------------------------

def render_turntable(mesh_path, strip_path, settings, device="cpu", backend="auto"):
    """Render ``mesh_path`` from the settings' K azimuths in one batch and save the views side by side.

    Writes strip_path (PNG, 3 x S x K*S) and, when settings.gif, an animated GIF beside it (same stem).
    """
    mesh = load_mesh(mesh_path)
    at, distance = frame_mesh(mesh.verts, settings.fov, settings.margin)
    count = len(settings.azimuths)
    cameras = make_cameras(settings.azimuths, [settings.elevation] * count, distance, settings.fov, at, device)
    images, _ = render_views(to_pytorch3d(mesh, device), cameras, settings.image_size, backend=backend,
                             light=settings.light)
    save_image(strip_path, torch.cat(list(images.cpu()), dim=-1))
    if settings.gif:
        save_gif(Path(strip_path).with_suffix(".gif"), images.cpu(), settings.frame_ms, is_full_circle(settings))


def is_full_circle(settings):
    """True when the azimuths go (nearly) all the way round, so the animation loops instead of swinging back."""
    azimuths = sorted(settings.azimuths)
    step = (azimuths[-1] - azimuths[0]) / max(len(azimuths) - 1, 1)
    return azimuths[-1] - azimuths[0] + step >= 359.0


def save_gif(path, images, frame_ms, loop_forward):
    """Animated GIF of K frames (K, 3, S, S) in [0, 1]; an arc plays forth and back, a full circle forward."""
    frames = [Image.fromarray(to_uint8_array(image)) for image in images]
    if not loop_forward:
        frames = frames + frames[-2:0:-1]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)


def update_turntables(pair, settings, device="cpu", backend="auto"):
    """Render the turntable strips of the pair's meshes that are missing or older than their mesh.

    A mesh that cannot be read is noted on the pair (``pair.notes``) and skipped.
    """
    for mesh_name, strip_name in TURNTABLES.items():
        mesh_path, strip_path = pair.folder / mesh_name, pair.folder / strip_name
        if not mesh_path.is_file() or not is_stale(strip_path, [mesh_path]):
            continue
        try:
            render_turntable(mesh_path, strip_path, settings, device, backend)
        except InputError as err:
            pair.notes.append(f"turntable of {mesh_name} not rendered: {err}")


def landmark_overlay(image_path, landmarks_path, drawn_path, given_path=None):
    """The picture of an image with its landmarks: ``given_path`` when that exists, else ``drawn_path``, drawn
    (again) when older than the image or the landmarks. Returns (path or None, note: why there is none)."""
    if given_path is not None and Path(given_path).is_file():
        return Path(given_path), ""
    if image_path is None or not Path(image_path).is_file() or not Path(landmarks_path).is_file():
        return None, f"no landmarks ({Path(landmarks_path).name} missing)"
    if is_stale(drawn_path, [image_path, landmarks_path]):
        try:
            image = read_image_array(image_path)
            points = load_landmarks(landmarks_path, image_size=image.shape[:2])
        except InputError as err:
            return None, str(err)
        small, points = _resized(image, points, OVERLAY_SIZE)
        save_keypoint_overlay(drawn_path, small, {"landmarks": points}, show_indices=False)
    return Path(drawn_path), ""


def _resized(image, points, size):
    """An image (H, W, 3) scaled so its longer side is ``size`` pixels, and its (N, 2) pixel (x, y) points
    moved with it (pixel centres map to pixel centres)."""
    resized = _scaled(image, size / max(image.shape[:2]))
    height, width = resized.shape[:2]
    return resized, (points + 0.5) * np.array([width / image.shape[1], height / image.shape[0]]) - 0.5


# ---- HTML -------------------------------------------------------------------------------------------------

def _href(path, index_dir):
    """Relative, URL-quoted link from the report's folder to ``path``."""
    relative = Path(os.path.relpath(Path(path).resolve(), Path(index_dir).resolve())).as_posix()
    return urllib.parse.quote(relative) + ("/" if Path(path).is_dir() else "")


def _esc(text):
    """Text made safe inside HTML elements and quoted attributes."""
    return html.escape(str(text), quote=True)


def figure_html(path, caption, index_dir, link=None, note=""):
    """A captioned picture linking to ``link`` (default: itself), or a "missing" box naming the file."""
    caption_html = f"<figcaption>{_esc(caption)}</figcaption>"
    if path is None or not Path(path).is_file():
        missing = note or f"missing: {Path(path).name if path is not None else caption}"
        return f'<figure class="missing"><div class="placeholder">{_esc(missing)}</div>{caption_html}</figure>'
    target = _href(link if link is not None and Path(link).exists() else path, index_dir)
    return (f'<figure><a href="{target}"><img src="{_href(path, index_dir)}" alt="{_esc(caption)}" '
            f'loading="lazy"></a>{caption_html}</figure>')


def format_value(value):
    """A metric as text: floats to 4 significant digits, lists joined, anything else as JSON."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return ", ".join(format_value(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def flatten(data, prefix=""):
    """Nested dict -> [(dotted key, value)] in file order."""
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        rows += flatten(value, f"{name}.") if isinstance(value, dict) else [(name, value)]
    return rows


def table_html(data):
    """A two-column table of a dict's leaves; entries that are dicts with more than ``FOLDED_OVER`` leaves
    (settings, say) go in collapsed sections."""
    nested = {key: value for key, value in data.items()
              if isinstance(value, dict) and len(flatten(value)) > FOLDED_OVER}
    plain = {key: value for key, value in data.items() if key not in nested}
    rows = "".join(f"<tr><th>{_esc(key)}</th><td>{_esc(format_value(value))}</td></tr>"
                   for key, value in flatten(plain))
    sections = "".join(f"<details><summary>{_esc(key)}</summary>{table_html(value)}</details>"
                       for key, value in nested.items())
    return (f'<table class="kv">{rows}</table>' if rows else "") + sections


def read_json_or_note(path):
    """(dict, "") for a readable JSON object at ``path``, else ({}, a note saying what is wrong)."""
    if not Path(path).is_file():
        return {}, f"{Path(path).name}: missing"
    try:
        data = load_json(path)
    except InputError as err:
        return {}, str(err)
    return (data, "") if isinstance(data, dict) else ({}, f"{Path(path).name}: not a JSON object")


def summary_metrics(metrics):
    """The top-level figures of a metrics dict that are numbers or lists of numbers (lists: their mean)."""
    figures = {}
    for key, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            figures[key] = float(np.nanmean(numbers)) if any(not math.isnan(v) for v in numbers) else math.nan
    return figures


def summary_html(pairs, metrics_by_pair, index_dir):
    """The table at the top: one row per pair with its state, a thumbnail and the headline figures."""
    columns = list(dict.fromkeys(key for figures in metrics_by_pair for key in figures))
    head = "".join(f"<th>{_esc(key)}</th>" for key in ["content", "style", "state", "stylized"] + columns)
    rows = []
    for pair, figures in zip(pairs, metrics_by_pair):
        thumb = pair.folder / "stylized_0.png"
        image = (f'<img class="thumb" src="{_href(thumb, index_dir)}" alt="" loading="lazy">'
                 if thumb.is_file() else "")
        cells = "".join(f"<td>{_esc(format_value(figures[key])) if key in figures else ''}</td>" for key in columns)
        rows.append(f'<tr><td><a href="#{_anchor(pair)}">{_esc(pair.content)}</a></td><td>{_esc(pair.style)}</td>'
                    f'<td><span class="state {pair.status}">{pair.status}</span></td><td>{image}</td>{cells}</tr>')
    note = "<p class=\"note\">Per-view figures are averaged over the views here; each pair's table lists them.</p>"
    table = f'<div class="wide"><table class="summary"><tr>{head}</tr>{"".join(rows)}</table></div>'
    return table + (note if columns else "")


def _anchor(pair):
    """The id of a pair's section (its link target in the summary)."""
    return urllib.parse.quote(f"{pair.content}--{pair.style}")


def pair_html(pair, index_dir, assets_dir, settings):
    """One pair's section: inputs, stylized views, turntables, metrics, links to the files."""
    views = view_indices(pair)
    folder = pair.folder
    content = [figure_html(pair.content_dir / f"view_{k}.png", f"content view {k}", index_dir) for k in views]
    content += [_content_overlay(pair, k, index_dir, assets_dir) for k in views]
    style = _style_figure(pair, index_dir, assets_dir)
    stylized = [figure_html(folder / f"stylized_{k}.png", f"stylized view {k}", index_dir) for k in views]
    unwarped = [figure_html(folder / f"unwarped_{k}.png", f"unwarped view {k}", index_dir) for k in views]
    arc = f"azimuth {min(settings.azimuths):g}° to {max(settings.azimuths):g}°" if settings else "turntable"
    turntables = [figure_html(folder / strip, f"{mesh} ({arc})", index_dir,
                              link=folder / Path(strip).with_suffix(".gif")) for mesh, strip in TURNTABLES.items()]
    plot_paths = [folder / plot for plot in INTERMEDIATE_PLOTS]
    plot_paths += [folder / "intermediate" / f"keypoints_view{k}.png" for k in views]
    plots = [figure_html(path, path.stem.replace("_", " "), index_dir) for path in plot_paths if path.is_file()]
    metrics, metrics_note = read_json_or_note(folder / "metrics.json")
    params, params_note = read_json_or_note(folder / "params.json")
    marker, _ = read_json_or_note(folder / COMPLETE_MARKER)
    notes = ([f"failed: {pair.reason}"] if pair.reason else []) + pair.notes
    return f"""
<section class="pair" id="{_anchor(pair)}">
<h3>{_esc(pair.content)} &times; {_esc(pair.style)} <span class="state {pair.status}">{pair.status}</span></h3>
{"".join(f'<p class="note">{_esc(n)}</p>' for n in notes)}
<div class="row"><div class="group"><h4>content</h4>{"".join(content)}</div>
<div class="group"><h4>style</h4>{style}</div></div>
<div class="row"><div class="group"><h4>stylized</h4>{"".join(stylized)}</div>
<div class="group"><h4>before the warp</h4>{"".join(unwarped)}</div></div>
{viewer_html(pair, index_dir)}
<div class="strips"><h4>stylized mesh, turned around the head (click for the animation)</h4>{"".join(turntables)}</div>
<div class="row"><div class="group metrics"><h4>metrics</h4>{table_html(metrics) or _esc(metrics_note)}</div>
<div class="group plots">{"".join(plots)}</div></div>
<details><summary>parameters</summary>{table_html(params) or _esc(params_note)}</details>
{f"<details><summary>completion</summary>{table_html(marker)}</details>" if marker else ""}
<p class="files">{_file_links(folder, index_dir)}</p>
</section>"""


def viewer_html(pair, index_dir):
    """The pair's 3D viewer: an empty box that viewer.js fills with its meshes when it scrolls into view."""
    meshes = []
    for name, glb in glb_paths(pair.folder).items():
        script = glb_script_path(glb)
        if script.is_file():
            meshes.append({"key": glb_key(glb), "script": _href(script, index_dir),
                           "caption": VIEWER_CAPTIONS[name]})
    if not meshes:
        return ""
    return (f'<div class="viewer3d" data-meshes="{_esc(json.dumps(meshes))}"><h4>in 3D</h4>'
            f'<p class="viewer-note">the 3D view loads when it comes into view</p></div>')  # = viewer.js's NOTE


def copy_viewer_files(assets_dir):
    """Copy viewer.js and the model-viewer library into the report's assets folder (when missing or older)."""
    for source in VIEWER_FILES:
        target = Path(assets_dir) / source.name
        if is_stale(target, [source]):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)


def _content_overlay(pair, k, index_dir, assets_dir):
    """Content view k with its landmarks (rendering's overlay, or one drawn here)."""
    content_dir = pair.content_dir
    path, note = landmark_overlay(content_dir / f"view_{k}.png", content_dir / f"landmarks_{k}.txt",
                                  assets_dir / "content" / pair.content / f"landmarks_{k}.png",
                                  content_dir / "overlays" / f"landmarks_{k}.png")
    return figure_html(path, f"landmarks view {k}", index_dir, note=note)


def _style_figure(pair, index_dir, assets_dir):
    """The style exemplar with its landmarks, linking to the exemplar itself."""
    image = pair.style_image
    if image is None:
        return figure_html(None, pair.style, index_dir, note=f"style image {pair.style} missing")
    path, note = landmark_overlay(image, image.with_suffix(".txt"), assets_dir / "style" / f"{pair.style}.png",
                                  image.parent / "overlays" / f"{pair.style}.png")
    if path is None:
        return figure_html(image, f"{pair.style} ({note})", index_dir)
    return figure_html(path, f"{pair.style} with its landmarks", index_dir, link=image)


def _file_links(folder, index_dir):
    """Links to the pair's files; the missing ones are named without a link."""
    links = []
    for name in PAIR_FILES:
        path = folder / name
        if path.exists():
            links.append(f'<a href="{_href(path, index_dir)}">{_esc(name)}</a>')
        else:
            links.append(f'<span class="absent">{_esc(name)} (missing)</span>')
    return " · ".join(links)


STYLE_SHEET = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
h2 { border-bottom: 2px solid #888; margin-top: 2em; }
section.pair { border: 1px solid #ccc; border-radius: 6px; padding: 0.5em 1em; margin: 1em 0; }
.row { display: flex; flex-wrap: wrap; gap: 2em; }
.group h4, .strips h4 { margin: 0.4em 0; }
figure { display: inline-block; margin: 0 0.5em 0.5em 0; vertical-align: top; text-align: center; }
figure img { width: 200px; height: auto; display: block; border: 1px solid #ddd; }
.strips figure { display: block; text-align: left; }
.strips figure img { width: auto; max-width: 100%; }
.plots figure img { width: 300px; }
figcaption { font-size: 0.8em; color: #555; }
.placeholder { width: 200px; height: 120px; display: flex; align-items: center; justify-content: center;
               background: #f3f3f3; border: 1px dashed #aaa; color: #a00; font-size: 0.8em; padding: 4px;
               box-sizing: border-box; overflow-wrap: anywhere; }
.strips .placeholder { width: 100%; height: 60px; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
.wide { overflow-x: auto; }
table.summary img.thumb { width: 48px; height: 48px; display: block; }
.state { padding: 1px 6px; border-radius: 4px; font-size: 0.8em; color: white; background: #888; }
.state.complete, .state.done { background: #2e7d32; }
.state.incomplete { background: #ef6c00; }
.state.failed { background: #c62828; }
.note { color: #a00; font-size: 0.85em; }
.files { font-size: 0.85em; }
.absent { color: #999; }
.viewer3d figure { margin-right: 1em; }
.viewer3d model-viewer { width: 320px; height: 320px; background: #eef; border: 1px solid #ddd; }
.viewer-note { font-size: 0.85em; color: #555; }
"""


def page_html(pairs, index_dir, assets_dir, settings, title, viewer=True):
    """The whole page: summary table, then one section per content mesh with its pairs (and the 3D viewer's
    script when ``viewer``)."""
    metrics = [summary_metrics(read_json_or_note(pair.folder / "metrics.json")[0]) for pair in pairs]
    counts = {state: sum(p.status == state for p in pairs) for state in ("complete", "done", "incomplete", "failed")}
    overview = ", ".join(f"{count} {state}" for state, count in counts.items() if count) or "none yet"
    plural = "" if len(pairs) == 1 else "s"
    written = time.strftime("%Y-%m-%d %H:%M:%S")
    sections = []
    for content in dict.fromkeys(pair.content for pair in pairs):
        body = "".join(pair_html(p, index_dir, assets_dir, settings) for p in pairs if p.content == content)
        sections.append(f"<h2>{_esc(content)}</h2>{body}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>{STYLE_SHEET}</style>
{f'<script src="{ASSETS_DIR}/viewer.js" defer></script>' if viewer else ""}</head>
<body><h1>{_esc(title)}</h1>
<p>{len(pairs)} pair{plural}: {_esc(overview)}. Written {written}; click a picture for its file.</p>
{summary_html(pairs, metrics, index_dir) if pairs else ""}
{"".join(sections)}
</body></html>
"""


def write_report(output_root="output", content_root="example/content", style_root="example/style",
                 turntable=TurntableSettings(), failures=None, device="auto", backend="auto",
                 title="RRPS 3D portrait stylization", models_root="example/models", viewer=True):
    """Write output_root/index.html for every pair folder in ``output_root``; returns its path.

    turntable: ``TurntableSettings`` to render the missing or stale turntable strips, or None to only show the
    strips already there. failures: {(content, style): reason} of pairs a batch reported as failed.
    viewer: write the missing or stale .glb files of every pair (input mesh from ``models_root`` or cameras.json)
    for the 3D viewer. Landmark overlays that the producers did not write are drawn into output_root/report_files/.
    """
    output_root = Path(output_root)
    pairs = find_pairs(output_root, content_root, style_root, failures)
    present = [pair for pair in pairs if pair.folder.is_dir()]
    if viewer:
        copy_viewer_files(output_root / ASSETS_DIR)
        for pair in tqdm(present, desc="3D views", unit="pair", leave=False):
            pair.notes += update_glbs(pair.folder, input_mesh_path(pair.content_dir, models_root))
    if turntable is not None:
        device = resolve_device(device)
        for pair in tqdm(present, desc="turntables", unit="pair", leave=False):
            update_turntables(pair, turntable, device, backend)
    index = output_root / REPORT_NAME
    save_text(index, page_html(pairs, output_root, output_root / ASSETS_DIR, turntable, title, viewer))
    finished = [pair for pair in pairs if (pair.folder / TURNTABLES["mesh.obj"]).is_file()]
    if finished:
        write_overview(finished[0], output_root / OVERVIEW_NAME)
    return index


def write_overview(pair, path, height=OVERVIEW_HEIGHT):
    """One picture of a pair: content view, style exemplar, stylized views in a row, the mesh's turntable(s) below.

    Every picture is scaled to ``height`` pixels high (turntables to the row's width); missing ones are left out.
    """
    row_paths = [pair.content_dir / "view_0.png", pair.style_image] + \
        [pair.folder / f"stylized_{k}.png" for k in view_indices(pair)]
    pictures = [read_image_array(p) for p in row_paths if p is not None and p.is_file()]
    top = np.concatenate([_scaled(picture, height / picture.shape[0]) for picture in pictures], axis=1)
    strips = [read_image_array(pair.folder / name) for name in TURNTABLES.values() if (pair.folder / name).is_file()]
    strips = [_scaled(strip, top.shape[1] / strip.shape[1]) for strip in strips]
    save_image(path, np.concatenate([top] + strips, axis=0))


def _scaled(image, factor):
    """An (H, W, 3) array resized by ``factor`` (area averaging when shrinking), at least one pixel a side."""
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
