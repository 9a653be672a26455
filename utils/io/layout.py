"""The project's files on disk, named in one place: every step reads and writes its folders through here.

    example/models/<name>.obj (+ <name>.landmarks.txt)   input meshes (``model_mesh``, ``model_landmarks``)
    example/style/<style>.png|jpg (+ <style>.txt)        style exemplars (``style_landmarks``)
    example/content/<name>/                              one rendered mesh (``ContentFolder``)
    output/<name>/<style>/                               one (mesh, style) pair (``PairFolder``)
    output/index.html, overview.png, report_files/       the report (``REPORT_NAME``, ...)
    <image folder>/overlays/                             landmark pictures to check by eye (``landmark_overlay``)

A path object names files only; it reads nothing and creates nothing, except where a method says it looks at
the folder (``views``, ``landmark_files``, ``mesh``). Both objects are path-like (``os.fspath``, ``Path(x)``)
and print as their folder.

    >>> content = ContentFolder("example/content/hopper")
    >>> content.view(1), content.landmarks(1)
    (PosixPath('example/content/hopper/view_1.png'), PosixPath('example/content/hopper/landmarks_1.txt'))
    >>> PairFolder.of("output", "hopper", "astronaut_caricature").mesh(smooth=True)
    PosixPath('output/hopper/astronaut_caricature/mesh_smooth.obj')
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

from utils.errors import InputError
from utils.io.files import load_json

PathLike = Union[str, os.PathLike]

# ---- the project's default folders (the scripts' defaults; their flags choose others) ------------------------
MODELS_DIR = Path("example/models")  # input meshes, written by acquire.py or brought by the user
STYLE_DIR = Path("example/style")  # style exemplars with their landmark files
CONTENT_DIR = Path("example/content")  # one ContentFolder per mesh, written by rendering.py
OUTPUT_DIR = Path("output")  # one PairFolder per (mesh, style), written by run.py, and the report

# ---- file names -----------------------------------------------------------------------------------------------
VIEW = "view_{}.png"  # content view k
LANDMARKS = "landmarks_{}.txt"  # 68 landmarks of content view k
CAMERAS = "cameras.json"  # per view the camera; written last by rendering, so it marks a complete folder
CAMERAS_MESH_KEY = "mesh"  # the key of cameras.json naming the mesh the folder was rendered from
VERTS2D = "verts2d.npy"  # (V, K, 2) vertex projections, pixel (x, y)
VISIBLE = "visible.npy"  # (V, K) bool
OVERLAYS = "overlays"  # beside landmark files: their pictures, and the check-by-eye flags
CHECKS_NAME = "check_by_eye.json"  # in overlays/: {landmark file name: [messages]}

STYLIZED = "stylized_{}.png"  # view k after style transfer and the warp
UNWARPED = "unwarped_{}.png"  # view k before the warp
VERTS2D_WARPED = "verts2d_warped.npy"  # (V, K, 2) vertex projections after the warp
MESH = "mesh.obj"  # the stylized mesh
SMOOTH_SUFFIX = "_smooth"  # mesh.obj -> mesh_smooth.obj (smooth.py), and so for its turntable and .glb
METRICS = "metrics.json"
PARAMS = "params.json"
INTERMEDIATE = "intermediate"  # checkpoints, loss curves, keypoint overlays, reconstruction renders
COMPLETE_MARKER = "complete.json"  # written last: a pair that has it is complete
INPUT_GLB = "input.glb"  # in output/<name>/: the input mesh for the 3D viewer, shared by the mesh's pairs

REPORT_NAME = "index.html"  # in the output folder
OVERVIEW_NAME = "overview.png"  # one picture of the first finished pair
ASSETS_DIR = "report_files"  # the report's own files (viewer scripts, landmark overlays it draws)


def _numbered(folder: Path, pattern: str) -> Dict[int, Path]:
    """{k: path} of the files in ``folder`` named ``pattern`` with a number k in place of {}, in order of k."""
    head, tail = pattern.split("{}")
    name = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    matches = ((name.fullmatch(path.name), path) for path in folder.glob(pattern.format("*")))
    return dict(sorted((int(match[1]), path) for match, path in matches if match))


def _file(name: str, doc: str = "") -> property:
    """A property naming the file ``name`` inside the folder."""
    return property(lambda self: self.path / name, doc=doc or name)


@dataclass(frozen=True)
class _Folder(os.PathLike):
    """A folder of the layout, made from a path or a path-like (another folder object): path-like, printed as its
    path; two are equal when they are of one kind and name one path."""

    path: Path

    def __init__(self, path: PathLike):
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name


class ContentFolder(_Folder):
    """example/content/<name>/: one mesh rendered by step 2, with the landmarks of step 3.

    view_<k>.png, landmarks_<k>.txt, cameras.json, verts2d.npy (V, K, 2), visible.npy (V, K), overlays/.
    """

    def view(self, k: int) -> Path:
        return self.path / VIEW.format(k)

    def landmarks(self, k: int) -> Path:
        return self.path / LANDMARKS.format(k)

    def landmark_overlay(self, k: int) -> Path:
        """The picture of view k with its landmarks (correspondences.py draws it)."""
        return landmark_overlay(self.landmarks(k))

    cameras = _file(CAMERAS)
    verts2d = _file(VERTS2D)
    visible = _file(VISIBLE)

    def outputs(self, num_views: int) -> List[Path]:
        """The files rendering writes for K views, in the order it writes them (cameras.json last)."""
        return [self.view(k) for k in range(num_views)] + [self.verts2d, self.visible, self.cameras]

    def views(self) -> Dict[int, Path]:
        """{k: view_<k>.png} of the views in the folder, in view order."""
        return _numbered(self.path, VIEW)

    def landmark_files(self) -> Dict[int, Path]:
        """{k: landmarks_<k>.txt} of the landmark files in the folder, in view order."""
        return _numbered(self.path, LANDMARKS)

    def mesh_candidates(self, models_dir: PathLike) -> List[Path]:
        """Where the mesh this folder was rendered from may be, first choice first: the file cameras.json names
        (rendering.py records it), then <models_dir>/<name>.obj. An unreadable cameras.json names none."""
        try:
            named = load_json(self.cameras).get(CAMERAS_MESH_KEY) if self.cameras.is_file() else None
        except (InputError, AttributeError):
            named = None
        return ([Path(named)] if named else []) + [model_mesh(models_dir, self.name)]

    def mesh(self, models_dir: PathLike) -> Optional[Path]:
        """The mesh this folder was rendered from: the first of ``mesh_candidates`` that is a file, else None."""
        return next((path for path in self.mesh_candidates(models_dir) if path.is_file()), None)


class PairFolder(_Folder):
    """output/<name>/<style>/: one mesh stylized with one exemplar (step 4), smoothed (step 5), and the files the
    report adds (turntables, .glb). ``smooth=True`` names the smoothed mesh's files (``SMOOTH_SUFFIX``)."""

    @classmethod
    def of(cls, output_root: PathLike, content: str, style: str) -> "PairFolder":
        """output_root/<content>/<style>/."""
        return cls(Path(output_root) / content / style)

    @property
    def content(self) -> str:
        return self.path.parent.name

    @property
    def style(self) -> str:
        return self.path.name

    def stylized(self, k: int) -> Path:
        return self.path / STYLIZED.format(k)

    def unwarped(self, k: int) -> Path:
        return self.path / UNWARPED.format(k)

    def view_indices(self) -> List[int]:
        """The view numbers k of the stylized or unwarped views in the folder, in order."""
        return sorted(set(_numbered(self.path, STYLIZED)) | set(_numbered(self.path, UNWARPED)))

    verts2d_warped = _file(VERTS2D_WARPED)

    def mesh(self, smooth: bool = False) -> Path:
        """mesh.obj, or with ``smooth`` mesh_smooth.obj (``smoothed_path``)."""
        return smoothed_path(self.path / MESH) if smooth else self.path / MESH

    def turntable(self, smooth: bool = False) -> Path:
        """The strip of the mesh turned around the head (turntable.png, turntable_smooth.png)."""
        return self.path / f"turntable{_suffix(smooth)}.png"

    def turntable_gif(self, smooth: bool = False) -> Path:
        """The turntable's animation, beside the strip."""
        return self.turntable(smooth).with_suffix(".gif")

    def glb(self, smooth: bool = False) -> Path:
        """The mesh as glTF binary for the report's 3D viewer (mesh.glb, mesh_smooth.glb)."""
        return self.mesh(smooth).with_suffix(".glb")

    @property
    def input_glb(self) -> Path:
        """output/<name>/input.glb: the input mesh for the 3D viewer, shared by every pair of that mesh."""
        return self.path.parent / INPUT_GLB

    metrics = _file(METRICS)
    params = _file(PARAMS)
    complete = _file(COMPLETE_MARKER, "The completion marker, written last.")
    intermediate = _file(INTERMEDIATE)
    loss_curves = _file(f"{INTERMEDIATE}/loss_curves.png", "The style transfer's loss curves.")
    recon_loss = _file(f"{INTERMEDIATE}/recon_loss.png", "The reconstruction's loss curves.")
    all_round_views = _file(f"{INTERMEDIATE}/all_round_views.png", "The 3D pass's final colours from its views.")
    all_round_loss = _file(f"{INTERMEDIATE}/all_round_loss.png", "The 3D pass's loss curves.")

    def view_picture(self, label: str, k: int) -> Path:
        """intermediate/<label>_view<k>.png: a checkpoint of the optimisation (label: its scale and
        iteration), the keypoints over the view ("keypoints") or the exemplar turned to it ("style")."""
        return self.intermediate / f"{label}_view{k}.png"

    def keypoints(self, k: int) -> Path:
        """The landmarks (source, target, current) over stylized view k."""
        return self.view_picture("keypoints", k)

    def recon_checkpoint(self, iteration: int, k: int) -> Path:
        """The reconstruction's render of view k at a refinement iteration."""
        return self.intermediate / f"recon_{iteration:04d}_{k}.png"


def _suffix(smooth: bool) -> str:
    return SMOOTH_SUFFIX if smooth else ""


def smoothed_path(mesh_path: PathLike) -> Path:
    """mesh.obj -> mesh_smooth.obj beside it (any mesh smooth.py is given; the smoothed one is always .obj)."""
    mesh_path = Path(mesh_path)
    return mesh_path.with_name(f"{mesh_path.stem}{SMOOTH_SUFFIX}.obj")


def stylized_meshes(output_root: PathLike) -> List[Path]:
    """Every pair's mesh.obj under ``output_root``, sorted."""
    return sorted(Path(output_root).glob(f"**/{MESH}"))


def pair_folders(output_root: PathLike) -> List[PairFolder]:
    """The pair folders output_root/<name>/<style>/ that exist (hidden folders and the report's left out),
    sorted by content then style."""
    return [PairFolder(pair) for content in _subfolders(output_root) if content.name != ASSETS_DIR
            for pair in _subfolders(content)]


def pair_glob(content: str = "*", style: str = "*") -> str:
    """A glob, relative to the output folder, for the pair folders of a content mesh or of a style."""
    return f"{content}/{style}"


def _subfolders(folder: PathLike) -> List[Path]:
    """Sorted visible sub-folders of ``folder`` (none when it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def content_folders(content_root: PathLike) -> List[ContentFolder]:
    """The content folders under ``content_root``, sorted (none when it does not exist)."""
    root = Path(content_root)
    return [ContentFolder(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []


def model_mesh(models_dir: PathLike, name: str) -> Path:
    """<models_dir>/<name>.obj."""
    return Path(models_dir) / f"{name}.obj"


def model_landmarks(models_dir: PathLike, name: str) -> Path:
    """<models_dir>/<name>.landmarks.txt: the mesh's 68 landmark vertex indices (acquire.py writes it)."""
    return Path(models_dir) / f"{name}.landmarks.txt"


def style_landmarks(image_path: PathLike) -> Path:
    """<style>.txt beside the style image <style>.png|jpg."""
    return Path(image_path).with_suffix(".txt")


def landmark_overlay(landmark_path: PathLike) -> Path:
    """<folder>/overlays/<landmark file stem>.png: the landmarks drawn over their image (which is in <folder>)."""
    landmark_path = Path(landmark_path)
    return landmark_path.parent / OVERLAYS / f"{landmark_path.stem}.png"


def checks_path(landmark_path: PathLike) -> Path:
    """<folder>/overlays/check_by_eye.json: the check-by-eye flags of the landmark files in <folder>."""
    return Path(landmark_path).parent / OVERLAYS / CHECKS_NAME
