"""Step 5 of RRPS: Taubin smoothing of the stylized meshes, as MeshLab's filter (which RRPS applied by hand).

    python smooth.py                       # every output/**/mesh.obj -> mesh_smooth.obj beside it
    python smooth.py path/to/mesh.obj --steps 10

Vertex colours and faces are kept; only positions change.
"""
import argparse
from pathlib import Path

from tqdm import tqdm

from utils.errors import InputError, cli_entry
from utils.io.files import check_writable, sweep_temporaries
from utils.io.mesh import load_mesh, save_obj
from utils.geometry.smoothing import taubin_smooth

# ---- parameters -------------------------------------------------------------------------------------------
OUTPUT_DIR = "output"  # searched for **/mesh.obj when no files are named
LAMBDA = 0.7  # shrinking step
MU = -0.53  # inflating step
STEPS = 20  # lambda/mu pairs, as MeshLab's "Taubin Smooth" step count
SUFFIX = "_smooth"  # mesh.obj -> mesh_smooth.obj
SHRINK_WARNING = 0.5  # say so when a smoothed mesh's bounding box shrinks below this share of the input's
OVERWRITE = False  # smooth again meshes whose smoothed file is newer than them
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("meshes", nargs="*", help="meshes to smooth (default: every mesh.obj under --output)")
    parser.add_argument("--output", default=OUTPUT_DIR, help="folder searched for **/mesh.obj")
    parser.add_argument("--lambda", dest="lambd", type=float, default=LAMBDA)
    parser.add_argument("--mu", type=float, default=MU)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--overwrite", action="store_true", default=OVERWRITE)
    return parser.parse_args()


def smoothed_path(mesh_path):
    """mesh.obj -> mesh_smooth.obj beside it."""
    return mesh_path.with_name(f"{mesh_path.stem}{SUFFIX}.obj")


@cli_entry
def main():
    args = parse_args()
    meshes = [Path(m) for m in args.meshes] or sorted(Path(args.output).glob("**/mesh.obj"))
    if not meshes:
        raise InputError(f"{args.output}: no mesh.obj found; run run.py first or name the meshes to smooth")
    for folder in sorted({mesh_path.parent for mesh_path in meshes}):
        check_writable(folder, None)  # the smoothed mesh is written beside its input
    for mesh_path in tqdm(meshes, desc="smoothing", unit="mesh"):
        target = smoothed_path(mesh_path)
        sweep_temporaries(target.parent, recursive=False, log=tqdm.write)
        if not args.overwrite and target.is_file() and target.stat().st_mtime >= mesh_path.stat().st_mtime:
            continue
        mesh = load_mesh(mesh_path)
        smoothed = mesh.with_verts(taubin_smooth(mesh.verts, mesh.faces, args.lambd, args.mu, args.steps))
        save_obj(target, smoothed)
        tqdm.write(f"{target}")
        ratio = smoothed.bbox_diagonal() / max(mesh.bbox_diagonal(), 1e-30)
        if ratio < SHRINK_WARNING:
            tqdm.write(f"warning: {target}: shrank to {ratio:.0%} of its size; on a mesh that is mostly border "
                       "(a single triangle, a strip) MeshLab's rule, matched here, does the same; use fewer --steps")


if __name__ == "__main__":
    main()
