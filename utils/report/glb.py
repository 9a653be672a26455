"""The meshes of a pair as glTF binary (.glb, vertex colours kept) for the report's 3D viewer.

Each pair folder output/<name>/<style>/ gets mesh.glb and mesh_smooth.glb beside the .obj files, and each mesh
folder output/<name>/ one input.glb (the content mesh the runs started from, shared by its pairs), written by
trimesh when missing or older than their mesh. Browsers
refuse to fetch a file:// .glb from a page opened from a folder, so each .glb also gets a small classic
script (``<mesh>.glb.js``, the file as base64) that the page loads with a <script> tag instead.
"""
import base64
import json
from pathlib import Path

import numpy as np
import trimesh

from utils.errors import InputError
from utils.io.files import atomic_path, is_stale, save_text
from utils.io.layout import PairFolder
from utils.io.mesh import load_mesh

SCRIPT_CALLBACK = "rrpsGlbLoaded"  # the page's function that each <mesh>.glb.js calls with its base64 data


def save_glb(path, mesh):
    """Write a ``utils.io.mesh.Mesh`` as glTF binary with per-vertex colours (COLOR_0) and normals, atomically."""
    colors = mesh.vertex_colors().detach().cpu().clamp(0, 1).numpy()
    rgba = np.concatenate([np.round(colors * 255), np.full((len(colors), 1), 255)], axis=1).astype(np.uint8)
    shape = trimesh.Trimesh(vertices=mesh.verts.detach().cpu().numpy(), faces=mesh.faces.cpu().numpy(),
                            vertex_colors=rgba, process=False)
    data = shape.export(file_type="glb", include_normals=True, tree_postprocessor=_matte_double_sided)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


MATERIAL = {"pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.9}, "doubleSided": True}


def _matte_double_sided(tree):
    """Give every primitive one matte, double-sided material (trimesh writes none for vertex colours, and glTF's
    default is metallic); double-sided because the heads are open shells, seen from behind when turned."""
    tree["materials"] = [MATERIAL]
    for mesh in tree.get("meshes", []):
        for primitive in mesh["primitives"]:
            primitive["material"] = 0


def save_glb_script(script_path, glb_path, key):
    """Write ``script_path``: one line calling ``SCRIPT_CALLBACK(key, base64 of the .glb)``, atomically."""
    encoded = base64.b64encode(Path(glb_path).read_bytes()).decode("ascii")
    save_text(script_path, f"{SCRIPT_CALLBACK}({json.dumps(key)}, \"{encoded}\");\n")


def update_glbs(folder, input_mesh):
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
            if is_stale(glb, [source]):
                save_glb(glb, load_mesh(source))
            if is_stale(script, [glb]):
                save_glb_script(script, glb, glb_key(glb))
        except InputError as err:
            notes.append(f"3D view of {Path(source).name} not written: {err}")
    return notes


def glb_paths(folder):
    """{mesh: .glb path} of a pair folder output/<name>/<style>/: "input" (in output/<name>/, shared by the pairs
    of that mesh), "stylized" and "smoothed" (``PairFolder.glb``)."""
    pair = PairFolder(folder)
    return {"input": pair.input_glb, "stylized": pair.glb(), "smoothed": pair.glb(smooth=True)}


def glb_key(glb_path):
    """The name a .glb's script announces itself with (its last three path parts), as the page asks for it."""
    glb_path = Path(glb_path)
    return f"{glb_path.parent.parent.name}/{glb_path.parent.name}/{glb_path.name}"


def glb_script_path(glb_path):
    """mesh.glb -> mesh.glb.js beside it."""
    return Path(glb_path).with_name(Path(glb_path).name + ".js")
