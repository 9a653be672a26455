"""Mesh files: .obj (vertex colours or UV texture) and .ply in, .obj with vertex colours out.

Vertex order and the face list are preserved exactly (polygons are split into
triangle fans in place), so an output mesh matches its input vertex for vertex.
"""
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from utils.errors import InputError
from utils.io.files import TEMP_MARK, atomic_path
from utils.io.images import read_image_array

if TYPE_CHECKING:
    from pytorch3d.structures import Meshes

MESH_SUFFIXES = (".obj", ".ply")
BINARY_PROBE = 8192  # bytes looked at to tell a binary file from a text OBJ
UNIT_COLOR_SLACK = 1e-3  # vertex colours up to 1 + this are 0-1 (an exporter's rounding), above it 0-255


@dataclass
class Mesh:
    """A triangle mesh with either per-vertex colours or a UV texture.

    verts: (V, 3) float32; faces: (F, 3) int64 indices into verts;
    colors: (V, 3) float32 in [0, 1] or None;
    verts_uvs: (T, 2) float32, faces_uvs: (F, 3) int64, texture: (H, W, 3) float32 in [0, 1], or None.
    """

    verts: torch.Tensor
    faces: torch.Tensor
    colors: Optional[torch.Tensor] = None
    verts_uvs: Optional[torch.Tensor] = None
    faces_uvs: Optional[torch.Tensor] = None
    texture: Optional[torch.Tensor] = None

    def with_verts(self, verts: torch.Tensor) -> "Mesh":
        """The same mesh (faces, colours, texture) with new vertex positions (V, 3)."""
        return replace(self, verts=verts)

    def vertex_colors(self) -> torch.Tensor:
        """(V, 3) colours: the stored ones, sampled from the texture, or mid-grey."""
        if self.colors is not None:
            return self.colors
        if self.texture is not None:
            return _sample_texture_at_vertices(self)
        return torch.full_like(self.verts, 0.7)

    def bbox_diagonal(self) -> float:
        """Length of the bounding-box diagonal (float)."""
        return float((self.verts.max(0).values - self.verts.min(0).values).norm())


def load_mesh(path: str | Path) -> Mesh:
    """Load a .obj or .ply file as a ``Mesh``; bad files raise ``InputError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: mesh file not found")
    suffix = path.suffix.lower()
    if suffix == ".obj":
        mesh = _load_obj(path)
    elif suffix == ".ply":
        mesh = _load_ply(path)
    else:
        raise InputError(f"{path}: unsupported mesh format '{suffix}'; use .obj or .ply")
    _validate(mesh, path)
    return mesh


def save_obj(path: str | Path, mesh: Mesh) -> None:
    """Write ``mesh`` as .obj with vertex colours ("v x y z r g b", colours in [0, 1]), atomically.

    MeshLab, Blender (4.x importer) and trimesh read this form. A textured mesh
    is written with colours sampled from its texture.
    """
    verts = mesh.verts.detach().cpu().double().numpy()
    colors = mesh.vertex_colors().detach().cpu().double().clamp(0, 1).numpy()
    faces = mesh.faces.detach().cpu().numpy() + 1
    vertex_block = np.concatenate([verts, colors], axis=1)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("# written by rrps: vertex colours in [0, 1]\n")
            np.savetxt(f, vertex_block, fmt="v %.7g %.7g %.7g %.5f %.5f %.5f")
            np.savetxt(f, faces, fmt="f %d %d %d")


def list_meshes(folder: str | Path) -> list[Path]:
    """Sorted mesh files (.obj, .ply) directly inside ``folder``."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in MESH_SUFFIXES and TEMP_MARK not in p.name) if folder.is_dir() else []


def _parse_index(token, count, path, line_no):
    """One 1-based (or negative, relative) OBJ index -> 0-based."""
    try:
        index = int(token)
    except ValueError:
        raise InputError(f"{path}:{line_no}: bad index '{token}' in a face line") from None
    if index == 0 or index > count or -index > count:
        raise InputError(f"{path}:{line_no}: face index {index} is out of range")
    return index - 1 if index > 0 else count + index


def _load_obj(path):
    """Parse an OBJ file: v (optionally with r g b), vt, f (v, v/vt, v/vt/vn, v//vn), mtllib/map_Kd.

    Hand-written because PyTorch3D's ``load_obj`` and ``IO().load_mesh`` drop the "v x y z r g b" vertex colours
    (checked with pytorch3d 0.7.9) that the RRPS meshes carry.
    """
    listed = _parse_obj(path, _read_obj_lines(path))
    if not listed.verts:
        raise InputError(f"{path}: no vertices; is this an .obj mesh?")
    if not listed.faces:
        raise InputError(f"{path}: no faces; the pipeline needs a triangle or polygon mesh, not a point cloud")
    mesh = Mesh(verts=torch.tensor(listed.verts, dtype=torch.float32),
                faces=torch.tensor(listed.faces, dtype=torch.int64))
    mesh.colors = _obj_colors(listed, path)
    texture_path = _texture_from_mtl(path, listed.mtllib) if listed.mtllib else None
    if texture_path is not None and listed.uvs:
        faces_uvs = torch.tensor(listed.faces_uv, dtype=torch.int64)
        if bool((faces_uvs < 0).any()):
            raise InputError(f"{path}: some faces have texture coordinates and some do not; give all or none")
        mesh.verts_uvs = torch.tensor(listed.uvs, dtype=torch.float32)
        mesh.faces_uvs = faces_uvs
        mesh.texture = torch.from_numpy(read_image_array(texture_path))
    return mesh


@dataclass
class _ObjListing:
    """What an OBJ file lists, as Python lists: verts (V, 3), colors (V or 0, 3), uvs (T, 2), faces (F, 3) and
    faces_uv (F, 3) 0-based (-1: the face has no texture coordinates), the material library's name or None."""

    verts: list = field(default_factory=list)
    colors: list = field(default_factory=list)
    uvs: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    faces_uv: list = field(default_factory=list)
    mtllib: Optional[str] = None


def _read_obj_lines(path):
    """The lines of a text OBJ; InputError for a file that cannot be read or holds binary data."""
    try:
        with open(path, "rb") as f:
            start = f.read(BINARY_PROBE)
        lines = path.read_text(errors="replace").splitlines()
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None
    if b"\0" in start:  # no text file has NUL bytes; reading on would report a malformed line deep inside
        raise InputError(f"{path}: not a text OBJ (binary data); export the mesh as a text .obj or as .ply")
    return lines


def _parse_obj(path, lines):
    """An ``_ObjListing`` of the lines; a malformed line is an InputError naming the file and line number."""
    listed = _ObjListing()
    for line_no, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0]
        try:
            if key == "v":
                values = _numbers(tokens, 3)
                listed.verts.append(values[:3])
                if len(values) >= 6:
                    listed.colors.append(values[3:6])
            elif key == "vt":
                listed.uvs.append(_numbers(tokens, 2)[:2])
            elif key == "f":
                _add_face(listed, tokens[1:], path, line_no)
            elif key == "mtllib" and len(tokens) > 1:
                listed.mtllib = line.split(None, 1)[1].strip()
        except ValueError:
            raise InputError(f"{path}:{line_no}: malformed '{key}' line: {line.strip()[:60]}") from None
    return listed


def _numbers(tokens, at_least):
    """The numbers after a line's keyword; ValueError when one is not a number or there are fewer than ``at_least``."""
    values = [float(t) for t in tokens[1:]]
    if len(values) < at_least:
        raise ValueError
    return values


def _add_face(listed, corner_tokens, path, line_no):
    """Append one face line's polygon to ``listed`` as a triangle fan, in order (ValueError: too few corners)."""
    corners = [t.split("/") for t in corner_tokens]
    if len(corners) < 3:
        raise ValueError
    vi = [_parse_index(c[0], len(listed.verts), path, line_no) for c in corners]
    has_uv = all(len(c) > 1 and c[1] for c in corners)
    ti = [_parse_index(c[1], len(listed.uvs), path, line_no) for c in corners] if has_uv else [-1] * len(vi)
    for k in range(1, len(vi) - 1):
        listed.faces.append([vi[0], vi[k], vi[k + 1]])
        listed.faces_uv.append([ti[0], ti[k], ti[k + 1]])


def _obj_colors(listed, path):
    """(V, 3) float32 vertex colours in [0, 1] from the listed ones (0-1 or 0-255), or None when none are given."""
    if not listed.colors:
        return None
    if len(listed.colors) != len(listed.verts):
        raise InputError(f"{path}: only {len(listed.colors)} of {len(listed.verts)} vertices have colours; "
                         "give all or none")
    rgb = torch.tensor(listed.colors, dtype=torch.float32)
    return rgb / 255.0 if float(rgb.max()) > 1.0 + UNIT_COLOR_SLACK else rgb.clamp(max=1.0)


def _texture_from_mtl(obj_path, mtllib):
    """Path of the first ``map_Kd`` image named in the material library, or None.

    Both must lie in the mesh's folder or below it: a mesh from elsewhere may not make the pipeline read (and bake
    into its views) any other file of the machine.
    """
    mtl_path = _inside_mesh_folder(obj_path, obj_path.parent, mtllib, "material library")
    if not mtl_path.is_file():
        raise InputError(f"{obj_path}: material library '{mtllib}' not found beside it; "
                         "put it there or remove the mtllib line")
    for line in mtl_path.read_text(errors="replace").splitlines():
        tokens = line.split()
        if tokens and tokens[0] == "map_Kd" and len(tokens) > 1:
            name = _map_file_name(line.split(None, 1)[1])
            texture = _inside_mesh_folder(obj_path, mtl_path.parent, name, "texture image")
            if not texture.is_file():
                raise InputError(f"{mtl_path}: texture image '{name}' not found beside it")
            return texture
    return None


def _inside_mesh_folder(obj_path, folder, name, what):
    """``folder``/``name``, a file the mesh ``obj_path`` refers to; InputError when it lies outside the mesh's folder
    (``..`` out of it, an absolute path elsewhere, a link leading out)."""
    path = folder / name
    if not path.resolve().is_relative_to(obj_path.parent.resolve()):
        raise InputError(f"{obj_path}: {what} '{name}' lies outside the mesh's folder; refused (a mesh may only "
                         "refer to files in its folder); copy the file beside the mesh and name it there")
    return path


MAP_OPTIONS = {"-blendu": 1, "-blendv": 1, "-boost": 1, "-mm": 2, "-o": 3, "-s": 3, "-t": 3, "-texres": 1,
               "-clamp": 1, "-bm": 1, "-imfchan": 1, "-type": 1, "-cc": 1}  # a map statement's options: most arguments


def _map_file_name(arguments):
    """The file name in a map statement's arguments (``-s 1 1 1 my skin.png`` -> ``my skin.png``): its options
    skipped, the rest of the line kept whole, spaces included."""
    words = list(re.finditer(r"\S+", arguments))
    at = 0
    while at < len(words) and words[at][0] in MAP_OPTIONS:
        most, at = MAP_OPTIONS[words[at][0]], at + 1
        for taken in range(most):  # -o, -s, -t take one to three numbers; the others one word
            if at >= len(words) or (taken and not _is_number(words[at][0])):
                break
            at += 1
    return arguments[words[at].start():].strip() if at < len(words) else arguments.strip()


def _is_number(word):
    try:
        float(word)
    except ValueError:
        return False
    return True


def _load_ply(path):
    """Read a .ply (ascii or binary) with PyTorch3D's public reader, keeping vertex colours."""
    from pytorch3d.io import IO

    with open(path, "rb") as f:
        header = f.read(65536)
    if not header.startswith(b"ply") or b"end_header" not in header:  # PyTorch3D's reader loops on a cut header
        raise InputError(f"{path}: not a PLY file (no complete 'ply ... end_header' header); re-export the mesh")
    try:
        loaded = IO().load_mesh(path, include_textures=True)
    except Exception as err:  # PyTorch3D raises ValueError/IndexError on malformed headers and bodies
        raise InputError(f"{path}: not a readable PLY mesh ({err})") from None
    if loaded.faces_packed().numel() == 0:
        raise InputError(f"{path}: no faces; the pipeline needs a triangle or polygon mesh, not a point cloud")
    mesh = Mesh(verts=loaded.verts_packed().float(), faces=loaded.faces_packed().long())
    if loaded.textures is not None:  # TexturesVertex when the file has vertex colours
        mesh.colors = loaded.textures.verts_features_packed().float()
    return mesh


def _validate(mesh, path):
    """Reject meshes the pipeline cannot use, naming the file and the problem."""
    if not bool(torch.isfinite(mesh.verts).all()):
        raise InputError(f"{path}: some vertex coordinates are NaN or infinite; repair the mesh")
    if mesh.faces.numel() == 0:
        raise InputError(f"{path}: no faces")
    if int(mesh.faces.min()) < 0 or int(mesh.faces.max()) >= len(mesh.verts):
        raise InputError(f"{path}: face indices out of range (mesh has {len(mesh.verts)} vertices)")
    if mesh.colors is not None and not bool(torch.isfinite(mesh.colors).all()):
        raise InputError(f"{path}: some vertex colours are NaN or infinite")


def _sample_texture_at_vertices(mesh):
    """(V, 3) colours: the texture sampled (nearest texel) at each vertex's UVs, averaged over its corners."""
    tex = mesh.texture
    h, w = tex.shape[:2]
    corner_uv = mesh.verts_uvs[mesh.faces_uvs.reshape(-1)]  # (3F, 2)
    col = (corner_uv[:, 0].clamp(0, 1) * (w - 1)).round().long()
    row = ((1 - corner_uv[:, 1].clamp(0, 1)) * (h - 1)).round().long()
    corner_rgb = tex[row, col]  # (3F, 3)
    vertex = mesh.faces.reshape(-1)
    sums = torch.zeros_like(mesh.verts).index_add_(0, vertex, corner_rgb)
    counts = torch.zeros(len(mesh.verts)).index_add_(0, vertex, torch.ones(len(vertex)))
    return torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], torch.full_like(sums, 0.7))


def to_pytorch3d(mesh: Mesh, device: str | torch.device = "cpu") -> "Meshes":
    """A PyTorch3D ``Meshes`` (batch of one) with TexturesUV or TexturesVertex."""
    from pytorch3d.renderer import TexturesUV, TexturesVertex
    from pytorch3d.structures import Meshes

    verts, faces = mesh.verts.to(device), mesh.faces.to(device)
    if mesh.texture is not None and mesh.colors is None:
        textures = TexturesUV(maps=mesh.texture[None].to(device), faces_uvs=[mesh.faces_uvs.to(device)],
                              verts_uvs=[mesh.verts_uvs.to(device)])
    else:
        textures = TexturesVertex(verts_features=[mesh.vertex_colors().to(device)])
    return Meshes(verts=[verts], faces=[faces], textures=textures)
