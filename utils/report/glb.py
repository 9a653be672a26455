"""The meshes of a pair as glTF binary (.glb, vertex colours kept) for the report's 3D viewer.

Each pair folder output/<name>/<style>/ gets mesh.glb and mesh_smooth.glb beside the .obj files, and each mesh
folder output/<name>/ one input.glb (the content mesh the runs started from, shared by its pairs), written when
missing or older than their mesh; each holds the mesh's colours with an unlit material (see ``save_glb``). Browsers
refuse to fetch a file:// .glb from a page opened from a folder, so each .glb also gets a small classic
script (``<mesh>.glb.js``, the file as base64) that the page loads with a <script> tag instead.
"""
from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import trimesh

from utils.errors import InputError
from utils.io.files import atomic_path, is_stale, save_text
from utils.io.layout import PairFolder
from utils.io.mesh import load_mesh

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from utils.io.mesh import Mesh

SCRIPT_CALLBACK = "rrpsGlbLoaded"  # the page's function that each <mesh>.glb.js calls with its base64 data
GENERATOR = "rrps report glb 2: unlit, linear COLOR_0"  # change it when the layout changes: older files are rewritten
COLOR_MAX = 65535  # COLOR_0 as normalized unsigned shorts
UNLIT = "KHR_materials_unlit"
MATERIAL = {"pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0,
                                     "roughnessFactor": 1.0},
            "extensions": {UNLIT: {}}, "doubleSided": True}
FLOAT, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5123, 5125  # glTF component types
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963  # glTF buffer view targets


def save_glb(path: str | Path, mesh: Mesh) -> None:
    """Write a ``utils.io.mesh.Mesh`` as glTF binary, atomically: positions, normals, per-vertex colours and one
    unlit, double-sided material, so that a glTF viewer shows the mesh's own colours as the project's unlit
    renders do.

    The colours are sRGB values (as in the .obj files and the renders); glTF's COLOR_0 is linear, so they are
    stored linearized (the viewer encodes them back to sRGB on output), as 16-bit integers because 8 bits of a
    linear value lose the dark tones (outlines) that 8 bits of sRGB keep. Unlit because a lit material shades
    the colours with the viewer's lights and environment; double-sided because the heads are open shells, seen
    from behind when turned.
    """
    verts = mesh.verts.detach().cpu().numpy().astype(np.float32)
    faces = mesh.faces.cpu().numpy().astype(np.uint32)
    normals = trimesh.Trimesh(vertices=verts, faces=faces, process=False).vertex_normals.astype(np.float32)
    linear = srgb_to_linear(mesh.vertex_colors().detach().cpu().double().clamp(0, 1).numpy())
    rgba = np.concatenate([linear, np.ones((len(linear), 1))], axis=1)
    colors = np.round(rgba * COLOR_MAX).astype(np.uint16)
    data = _glb_bytes(_gltf_tree(verts, len(faces)), [verts, normals, colors, faces])
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def srgb_to_linear(values: ArrayLike) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light (the sRGB transfer function), any shape."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def _gltf_tree(verts, num_faces):
    """The glTF JSON of one triangle mesh whose buffer holds, in order: positions (V, 3) float32, normals (V, 3)
    float32, colours (V, 4) uint16, face indices (F, 3) uint32."""
    count = len(verts)
    layout = [(count * 12, ARRAY_BUFFER, FLOAT, "VEC3", count, False),
              (count * 12, ARRAY_BUFFER, FLOAT, "VEC3", count, False),
              (count * 8, ARRAY_BUFFER, UNSIGNED_SHORT, "VEC4", count, True),
              (num_faces * 12, ELEMENT_ARRAY_BUFFER, UNSIGNED_INT, "SCALAR", num_faces * 3, False)]
    views, accessors, offset = [], [], 0
    for index, (length, target, component, kind, number, normalized) in enumerate(layout):
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": length, "target": target})
        accessor = {"bufferView": index, "componentType": component, "type": kind, "count": number}
        accessors.append({**accessor, "normalized": True} if normalized else accessor)
        offset += length  # every length is a multiple of 4, so every view stays aligned
    accessors[0].update(min=verts.min(0).tolist(), max=verts.max(0).tolist())  # glTF requires POSITION's bounds
    primitive = {"attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2}, "indices": 3, "material": 0, "mode": 4}
    return {"asset": {"version": "2.0", "generator": GENERATOR}, "extensionsUsed": [UNLIT],
            "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}], "meshes": [{"primitives": [primitive]}],
            "materials": [MATERIAL], "buffers": [{"byteLength": offset}], "bufferViews": views,
            "accessors": accessors}


def _glb_bytes(tree, arrays):
    """A .glb file: 12-byte header, the JSON chunk (padded with spaces) and the binary chunk (the arrays'
    little-endian bytes, in order)."""
    content = json.dumps(tree, separators=(",", ":")).encode("utf-8")
    content += b" " * (-len(content) % 4)
    binary = b"".join(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
                      for array in arrays)
    binary += b"\0" * (-len(binary) % 4)
    chunks = [(content, b"JSON"), (binary, b"BIN\0")]
    total = 12 + sum(8 + len(chunk) for chunk, _ in chunks)
    header = b"glTF" + struct.pack("<II", 2, total)
    return header + b"".join(struct.pack("<I", len(chunk)) + kind + chunk for chunk, kind in chunks)


def glb_tree(path: str | Path) -> dict[str, Any]:
    """The glTF JSON of a .glb file as a dict; {} when the file is missing or not a .glb."""
    try:
        with open(path, "rb") as file:
            magic, _, _, length, kind = struct.unpack("<4sIII4s", file.read(20))
            if magic != b"glTF" or kind != b"JSON":
                return {}
            return json.loads(file.read(length))
    except (OSError, struct.error, ValueError):
        return {}


def _written_as_now(glb):
    """True when the .glb was written by this version of ``save_glb`` (a .glb from an older one, e.g. with a lit
    material and sRGB colours, is rewritten even when it is newer than its mesh)."""
    return glb_tree(glb).get("asset", {}).get("generator") == GENERATOR


def save_glb_script(script_path: str | Path, glb_path: str | Path, key: str) -> None:
    """Write ``script_path``: one line calling ``SCRIPT_CALLBACK(key, base64 of the .glb)``, atomically."""
    encoded = base64.b64encode(Path(glb_path).read_bytes()).decode("ascii")
    save_text(script_path, f"{SCRIPT_CALLBACK}({json.dumps(key)}, \"{encoded}\");\n")


def update_glbs(folder: PairFolder | str | Path, input_mesh: str | Path | None) -> list[str]:
    """Write the pair folder's .glb files (and their .glb.js scripts) that are missing or older than their mesh.

    folder: the pair's output folder; input_mesh: path of the content mesh (``ContentFolder.mesh``) or None.
    Returns notes on meshes that could not be read.
    """
    pair = PairFolder(folder)
    sources = {"input": input_mesh, "stylized": pair.mesh(), "smoothed": pair.mesh(smooth=True)}
    notes = []
    for name, glb in glb_paths(folder).items():
        source = sources[name]
        if source is None or not Path(source).is_file():
            continue
        script = glb_script_path(glb)
        try:
            if is_stale(glb, [source]) or not _written_as_now(glb):
                save_glb(glb, load_mesh(source))
            if is_stale(script, [glb]):
                save_glb_script(script, glb, glb_key(glb))
        except InputError as err:
            notes.append(f"3D view of {Path(source).name} not written: {err}")
    return notes


def glb_paths(folder: PairFolder | str | Path) -> dict[str, Path]:
    """{mesh: .glb path} of a pair folder output/<name>/<style>/: "input" (in output/<name>/, shared by the pairs
    of that mesh), "stylized" and "smoothed" (``PairFolder.glb``)."""
    pair = PairFolder(folder)
    return {"input": pair.input_glb, "stylized": pair.glb(), "smoothed": pair.glb(smooth=True)}


def glb_key(glb_path: str | Path) -> str:
    """The name a .glb's script announces itself with (its last three path parts), as the page asks for it."""
    glb_path = Path(glb_path)
    return f"{glb_path.parent.parent.name}/{glb_path.parent.name}/{glb_path.name}"


def glb_script_path(glb_path: str | Path) -> Path:
    """mesh.glb -> mesh.glb.js beside it."""
    return Path(glb_path).with_name(Path(glb_path).name + ".js")
