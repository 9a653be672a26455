"""Step 5 of RRPS: Taubin smoothing of the stylized meshes, as MeshLab's filter (which RRPS applied by hand).

    python smooth.py                       # every output/**/mesh.obj -> mesh_smooth.obj beside it
    python smooth.py path/to/mesh.obj --steps 10

Vertex colours and faces are kept; only positions change.
"""
import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from utils.errors import InputError, cli_entry
from utils.io import layout
from utils.io.files import check_writable, is_stale, sweep_temporaries
from utils.io.layout import smoothed_path, stylized_meshes
from utils.io.mesh import load_mesh, save_obj
from utils.geometry.smoothing import TaubinSettings, taubin_smooth
from utils.settings import add_flags, from_flags

# ---- parameters -------------------------------------------------------------------------------------------
OUTPUT_DIR = layout.OUTPUT_DIR  # searched for **/mesh.obj when no files are named
SHRINK_WARNING = 0.5  # say so when a smoothed mesh's bounding box shrinks below this share of the input's
OVERWRITE = False  # smooth again meshes whose smoothed file is newer than them
# TaubinSettings (utils/geometry/smoothing.py) holds MeshLab's defaults (lambda 0.7, mu -0.53, 20 steps), each with
# a flag; write here only what you change, e.g. dict(steps=10).
SMOOTH = dict()
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("meshes", nargs="*", help="meshes to smooth (default: every mesh.obj under --output)")
    parser.add_argument("--output", default=OUTPUT_DIR, help="folder searched for **/mesh.obj")
    parser.add_argument("--overwrite", action="store_true", default=OVERWRITE)
    add_flags(parser, TaubinSettings(**SMOOTH), "smoothing (TaubinSettings)", aliases={"lambd": ["--lambda"]})
    return parser.parse_args()


@cli_entry
def main():
    args = parse_args()
    meshes = [Path(m) for m in args.meshes] or stylized_meshes(args.output)
    if not meshes:
        raise InputError(f"{args.output}: no mesh.obj found; run run.py first or name the meshes to smooth")
    for folder in sorted({mesh_path.parent for mesh_path in meshes}):
        check_writable(folder, None)  # the smoothed mesh is written beside its input
    settings = from_flags(args, TaubinSettings(**SMOOTH))
    failed = []
    for mesh_path in tqdm(meshes, desc="smoothing", unit="mesh"):
        try:
            smooth_one(mesh_path, settings, args.overwrite)
        except InputError as err:  # one bad mesh among several: reported, the others go on
            if len(meshes) == 1:
                raise
            failed.append(str(mesh_path))
            tqdm.write(f"error: {err}", file=sys.stderr)
    if failed:
        raise InputError(f"{len(failed)} of {len(meshes)} mesh(es) failed ({', '.join(failed)}; errors above)")


def smooth_one(mesh_path, settings, overwrite):
    """Write mesh_smooth.obj beside ``mesh_path`` unless it is newer than the mesh; one line says what was done."""
    target = smoothed_path(mesh_path)
    sweep_temporaries(target.parent, recursive=False, log=tqdm.write)
    if not overwrite and mesh_path.is_file() and not is_stale(target, [mesh_path]):
        return
    mesh = load_mesh(mesh_path)
    smoothed = mesh.with_verts(taubin_smooth(mesh.verts, mesh.faces, settings.lambd, settings.mu, settings.steps))
    save_obj(target, smoothed)
    tqdm.write(f"{target}")
    ratio = smoothed.bbox_diagonal() / max(mesh.bbox_diagonal(), 1e-30)
    if ratio < SHRINK_WARNING:
        tqdm.write(f"warning: {target}: shrank to {ratio:.0%} of its size; on a mesh that is mostly border "
                   "(a single triangle, a strip) MeshLab's rule, matched here, does the same; use fewer --steps")

if __name__ == "__main__":
    main()
