"""The run's report: output/index.html, one static page to look at every (mesh, style) pair afterwards.

For each pair folder output/<name>/<style>/ the page shows the content views, the style exemplar with its
landmarks, the stylized (and unwarped) views, turntable strips of the stylized mesh before and after smoothing
(rendered by ``pictures``, cached beside the meshes) and the figures of metrics.json.
Static files only: relative links, no network, so the folder can be opened offline or copied. The one script,
viewer.js, turns each pair's meshes (.glb, see ``glb``) in a 3D viewer (model-viewer, vendored) when the pair
scrolls into view; the turntable pictures stay as the fallback.
Anything missing is shown as missing; the page is built for incomplete and failed pairs too.
"""
from __future__ import annotations

import html
import json
import math
import os
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from utils.batch import is_complete
from utils.device import resolve_device
from utils.errors import InputError
from utils.io import layout
from utils.io.files import atomic_path, is_stale, load_json, save_text
from utils.io.images import list_images
from utils.io.layout import ASSETS_DIR, OVERVIEW_NAME, REPORT_NAME, ContentFolder, PairFolder, pair_folders
from utils.report.glb import glb_key, glb_paths, glb_script_path, update_glbs
from utils.report.pictures import TurntableSettings, landmark_overlay, update_turntables, write_overview

if TYPE_CHECKING:
    import torch

FOLDED_OVER = 4  # a nested dict of metrics or parameters with more leaves than this is shown collapsed
VIEWER_FILES = (Path(__file__).with_name("viewer.js"), Path(__file__).parent / "vendor" / "model-viewer-umd.min.js")
VIEWER_CAPTIONS = {"input": "input mesh", "stylized": "stylized", "smoothed": "stylized, smoothed"}


@dataclass
class Pair:
    """One (content, style) pair: its output folder, inputs and state ("complete", "done", "incomplete",
    "failed"); ``reason`` says why a failed pair failed."""

    content: str
    style: str
    folder: PairFolder
    content_dir: ContentFolder
    style_image: Optional[Path]
    status: str
    reason: str = ""
    notes: list = field(default_factory=list)


# ---- finding the pairs ------------------------------------------------------------------------------------

def find_pairs(output_root: str | Path, content_root: str | Path, style_root: str | Path,
               failures: Mapping[tuple[str, str], str] | None = None) -> list[Pair]:
    """Every pair folder output_root/<name>/<style>/, plus the pairs in ``failures`` that have none.

    failures: {(content, style): reason} for pairs a batch reported as failed (None: none known).
    Returns a list of ``Pair`` sorted by content then style.
    """
    failures = dict(failures or {})
    found = {(folder.content, folder.style) for folder in pair_folders(output_root)}
    styles = {path.stem: path for path in list_images(style_root)}
    pairs = []
    for content, style in sorted(found | set(failures)):
        folder = PairFolder.of(output_root, content, style)
        status = pair_status(folder, (content, style) in failures)
        pairs.append(Pair(content, style, folder, ContentFolder(Path(content_root) / content), styles.get(style),
                          status, failures.get((content, style), "")))
    return pairs


def pair_status(folder: PairFolder | str | Path, failed: bool = False) -> str:
    """"complete" (completion marker written), "failed" (reported so), "done" (mesh.obj written) or "incomplete".
    folder: a ``PairFolder`` or its path."""
    if is_complete(folder):
        return "complete"
    if failed:
        return "failed"
    return "done" if PairFolder(folder).mesh().is_file() else "incomplete"


def view_indices(pair: Pair) -> list[int]:
    """The view numbers k seen in the content views or the stylized outputs ([0] when there are none)."""
    return sorted(set(pair.content_dir.views()) | set(pair.folder.view_indices())) or [0]

# ---- HTML -------------------------------------------------------------------------------------------------

def _href(path, index_dir):
    """Relative, URL-quoted link from the report's folder to ``path``."""
    relative = Path(os.path.relpath(Path(path).resolve(), Path(index_dir).resolve())).as_posix()
    return urllib.parse.quote(relative) + ("/" if Path(path).is_dir() else "")


def _esc(text):
    """Text made safe inside HTML elements and quoted attributes."""
    return html.escape(str(text), quote=True)


def figure_html(path: str | Path | None, caption: str, index_dir: str | Path, link: str | Path | None = None,
                note: str = "") -> str:
    """A captioned picture linking to ``link`` (default: itself), or a "missing" box naming the file."""
    caption_html = f"<figcaption>{_esc(caption)}</figcaption>"
    if path is None or not Path(path).is_file():
        missing = note or f"missing: {Path(path).name if path is not None else caption}"
        return f'<figure class="missing"><div class="placeholder">{_esc(missing)}</div>{caption_html}</figure>'
    target = _href(link if link is not None and Path(link).exists() else path, index_dir)
    return (f'<figure><a href="{target}"><img src="{_href(path, index_dir)}" alt="{_esc(caption)}" '
            f'loading="lazy"></a>{caption_html}</figure>')


def format_value(value: Any) -> str:
    """A metric as text: floats to 4 significant digits, lists joined, anything else as JSON."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return ", ".join(format_value(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dict -> [(dotted key, value)] in file order."""
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        rows += flatten(value, f"{name}.") if isinstance(value, dict) else [(name, value)]
    return rows


def table_html(data: Mapping[str, Any]) -> str:
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


def read_json_or_note(path: str | Path) -> tuple[dict, str]:
    """(dict, "") for a readable JSON object at ``path``, else ({}, a note saying what is wrong)."""
    if not Path(path).is_file():
        return {}, f"{Path(path).name}: missing"
    try:
        data = load_json(path)
    except InputError as err:
        return {}, str(err)
    return (data, "") if isinstance(data, dict) else ({}, f"{Path(path).name}: not a JSON object")


def summary_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The top-level figures of a metrics dict that are numbers or lists of numbers (lists: their mean)."""
    figures = {}
    for key, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            figures[key] = float(np.nanmean(numbers)) if any(not math.isnan(v) for v in numbers) else math.nan
    return figures


def summary_html(pairs: Sequence[Pair], metrics_by_pair: Sequence[Mapping[str, float]], index_dir: str | Path) -> str:
    """The table at the top: one row per pair with its state, a thumbnail and the headline figures."""
    columns = list(dict.fromkeys(key for figures in metrics_by_pair for key in figures))
    head = "".join(f"<th>{_esc(key)}</th>" for key in ["content", "style", "state", "stylized"] + columns)
    rows = []
    for pair, figures in zip(pairs, metrics_by_pair):
        thumb = pair.folder.stylized(0)
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


def pair_html(pair: Pair, index_dir: str | Path, assets_dir: Path, settings: TurntableSettings | None) -> str:
    """One pair's section: inputs, stylized views, turntables, metrics, links to the files."""
    views = view_indices(pair)
    folder = pair.folder
    content = [figure_html(pair.content_dir.view(k), f"content view {k}", index_dir) for k in views]
    content += [_content_overlay(pair, k, index_dir, assets_dir) for k in views]
    style = _style_figure(pair, index_dir, assets_dir)
    stylized = [figure_html(folder.stylized(k), f"stylized view {k}", index_dir) for k in views]
    unwarped = [figure_html(folder.unwarped(k), f"unwarped view {k}", index_dir) for k in views]
    arc = f"azimuth {min(settings.azimuths):g}° to {max(settings.azimuths):g}°" if settings else "turntable"
    turntables = [figure_html(folder.turntable(smooth), f"{folder.mesh(smooth).name} ({arc})", index_dir,
                              link=folder.turntable_gif(smooth)) for smooth in (False, True)]
    plot_paths = [folder.loss_curves, folder.recon_loss] + [folder.keypoints(k) for k in views]
    plots = [figure_html(path, path.stem.replace("_", " "), index_dir) for path in plot_paths if path.is_file()]
    metrics, metrics_note = read_json_or_note(folder.metrics)
    params, params_note = read_json_or_note(folder.params)
    marker, _ = read_json_or_note(folder.complete)
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


def viewer_html(pair: Pair, index_dir: str | Path) -> str:
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


def copy_viewer_files(assets_dir: str | Path) -> None:
    """Copy viewer.js and the model-viewer library into the report's assets folder (when missing or older)."""
    for source in VIEWER_FILES:
        target = Path(assets_dir) / source.name
        if is_stale(target, [source]):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)


def _content_overlay(pair, k, index_dir, assets_dir):
    """Content view k with its landmarks (rendering's overlay, or one drawn here)."""
    content_dir = pair.content_dir
    given = content_dir.landmark_overlay(k)
    path, note = landmark_overlay(content_dir.view(k), content_dir.landmarks(k),
                                  assets_dir / "content" / pair.content / given.name, given)
    return figure_html(path, f"landmarks view {k}", index_dir, note=note)


def _style_figure(pair, index_dir, assets_dir):
    """The style exemplar with its landmarks, linking to the exemplar itself."""
    image = pair.style_image
    if image is None:
        return figure_html(None, pair.style, index_dir, note=f"style image {pair.style} missing")
    landmarks = layout.style_landmarks(image)
    path, note = landmark_overlay(image, landmarks, assets_dir / "style" / f"{pair.style}.png",
                                  layout.landmark_overlay(landmarks))
    if path is None:
        return figure_html(image, f"{pair.style} ({note})", index_dir)
    return figure_html(path, f"{pair.style} with its landmarks", index_dir, link=image)


def _pair_files(folder):
    """[(name shown, path)] of the files a pair's section links to (folder: ``PairFolder``)."""
    paths = [folder.mesh(), folder.mesh(smooth=True), folder.metrics, folder.params, folder.verts2d_warped,
             folder.turntable_gif(), folder.turntable_gif(smooth=True)]
    return [(path.name, path) for path in paths] + [(f"{folder.intermediate.name}/", folder.intermediate)]


def _file_links(folder, index_dir):
    """Links to the pair's files; the missing ones are named without a link."""
    links = []
    for name, path in _pair_files(folder):
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


def page_html(pairs: Sequence[Pair], index_dir: str | Path, assets_dir: Path, settings: TurntableSettings | None,
              title: str, viewer: bool = True) -> str:
    """The whole page: summary table, then one section per content mesh with its pairs (and the 3D viewer's
    script when ``viewer``)."""
    metrics = [summary_metrics(read_json_or_note(pair.folder.metrics)[0]) for pair in pairs]
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


def write_report(output_root: str | Path = layout.OUTPUT_DIR, content_root: str | Path = layout.CONTENT_DIR,
                 style_root: str | Path = layout.STYLE_DIR, turntable: TurntableSettings | None = TurntableSettings(),
                 failures: Mapping[tuple[str, str], str] | None = None, device: str | torch.device = "auto",
                 backend: str = "auto", title: str = "RRPS 3D portrait stylization",
                 models_root: str | Path = layout.MODELS_DIR, viewer: bool = True) -> Path:
    """Write output_root/index.html for every pair folder in ``output_root``; returns its path.

    turntable: ``TurntableSettings`` to render the missing or stale turntable strips, or None to only show the
    strips already there. failures: {(content, style): reason} of pairs a batch reported as failed.
    viewer: write the missing or stale .glb files of every pair (input mesh from ``models_root`` or cameras.json)
    for the 3D viewer. Landmark overlays that the producers did not write are drawn into output_root/report_files/.
    """
    output_root = Path(output_root)
    pairs = find_pairs(output_root, content_root, style_root, failures)
    present = [pair for pair in pairs if pair.folder.path.is_dir()]
    if viewer:
        copy_viewer_files(output_root / ASSETS_DIR)
        for pair in tqdm(present, desc="3D views", unit="pair", leave=False):
            pair.notes += update_glbs(pair.folder, pair.content_dir.mesh(models_root))
    if turntable is not None:
        device = resolve_device(device)
        for pair in tqdm(present, desc="turntables", unit="pair", leave=False):
            pair.notes += update_turntables(pair.folder, turntable, device, backend)
    index = output_root / REPORT_NAME
    save_text(index, page_html(pairs, output_root, output_root / ASSETS_DIR, turntable, title, viewer))
    finished = [pair for pair in pairs if pair.folder.turntable().is_file()]
    if finished:
        write_pair_overview(finished[0], output_root / OVERVIEW_NAME)
    return index


def write_pair_overview(pair: Pair, path: str | Path) -> None:
    """``pictures.write_overview`` of a pair: content view 0, the style exemplar and the stylized views in a row,
    the turntables of the mesh before and after smoothing below."""
    folder = pair.folder
    row = [pair.content_dir.view(0), pair.style_image] + [folder.stylized(k) for k in view_indices(pair)]
    write_overview(row, [folder.turntable(), folder.turntable(smooth=True)], path)
