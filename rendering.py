"""Step 2 of RRPS: render every mesh from a few views into content images.

    python rendering.py                      # every mesh in example/models/
    python rendering.py example/models/hopper.obj --size 256 --azimuths -15 0 15

Writes example/content/<name>/: view_<k>.png, cameras.json (per view R, T, fov and the
3x4 world-to-pixel matrix), verts2d.npy (V, K, 2) pixel (x, y) projections, visible.npy (V, K).
"""
import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from utils.rendering.content import RenderSettings, is_up_to_date, render_content
from utils.device import resolve_device
from utils.errors import InputError, cli_entry
from utils.io.files import check_writable
from utils.io.mesh import list_meshes

# ---- parameters -------------------------------------------------------------------------------------------
MODELS_DIR = "example/models"  # meshes to render (.obj with vertex colours or UV texture, .ply)
CONTENT_DIR = "example/content"  # one folder per mesh is written here
AZIMUTHS = [-10.0, 10.0]  # degrees; RRPS renders two views
ELEVATIONS = [0.0, 0.0]  # degrees, one per azimuth
IMAGE_SIZE = 512  # pixels a side
FOV = 15.0  # vertical field of view, degrees
DISTANCE = None  # camera distance; None frames the mesh's bounding box
LOOK_AT = None  # [x, y, z]; None looks at the bounding box's centre
LIGHT = None  # None renders the mesh's colours unlit; 0.3 adds a headlight with 30% diffuse
BACKGROUND = (1.0, 1.0, 1.0)  # RGB in [0, 1]
DEVICE = "auto"  # "auto" (CUDA if available), "cpu", "cuda"
RASTERIZER = "auto"  # "auto" (the fast one on CPU), "fast", "pytorch3d"
OVERWRITE = False  # re-render meshes whose outputs are already up to date
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("meshes", nargs="*", help=f"mesh files (default: every mesh in {MODELS_DIR})")
    parser.add_argument("--out", default=CONTENT_DIR, help="content root folder")
    parser.add_argument("--azimuths", type=float, nargs="+", default=AZIMUTHS)
    parser.add_argument("--elevations", type=float, nargs="+", default=None,
                        help=f"one per azimuth (default {ELEVATIONS}, or 0 for every view)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE)
    parser.add_argument("--fov", type=float, default=FOV)
    parser.add_argument("--distance", type=float, default=DISTANCE)
    parser.add_argument("--look-at", type=float, nargs=3, default=LOOK_AT)
    parser.add_argument("--light", type=float, default=LIGHT)
    parser.add_argument("--device", default=DEVICE)
    parser.add_argument("--rasterizer", default=RASTERIZER, choices=["auto", "fast", "pytorch3d"])
    parser.add_argument("--overwrite", action="store_true", default=OVERWRITE)
    return parser.parse_args()


@cli_entry
def main():
    args = parse_args()
    meshes = [Path(m) for m in args.meshes] or list_meshes(MODELS_DIR)
    if not meshes:
        raise InputError(f"{MODELS_DIR}: no .obj or .ply meshes found; put a mesh there or name one")
    default_elevations = ELEVATIONS if len(ELEVATIONS) == len(args.azimuths) else [0.0] * len(args.azimuths)
    elevations = args.elevations or default_elevations
    if len(elevations) != len(args.azimuths):
        raise InputError(f"--elevations: give one per azimuth ({len(args.azimuths)})")
    settings = RenderSettings(azimuths=args.azimuths, elevations=elevations, image_size=args.size, fov=args.fov,
                              distance=args.distance, look_at=args.look_at, light=args.light, background=BACKGROUND)
    check_writable(args.out, "--out")
    device = resolve_device(args.device)
    failed = []
    for mesh_path in tqdm(meshes, desc="rendering", unit="mesh"):
        try:
            render_one(mesh_path, Path(args.out) / mesh_path.stem, settings, device, args)
        except InputError as err:  # one bad mesh among several: reported, the others go on
            if len(meshes) == 1:
                raise
            failed.append(mesh_path.name)
            tqdm.write(f"error: {err}", file=sys.stderr)
    if failed:
        raise InputError(f"{len(failed)} of {len(meshes)} mesh(es) failed ({', '.join(failed)}; errors above)")


def render_one(mesh_path, content_dir, settings, device, args):
    """Render one mesh into its content folder unless it is up to date; one line says what happened."""
    if not args.overwrite and is_up_to_date(mesh_path, content_dir, settings):
        tqdm.write(f"{mesh_path.stem}: up to date in {content_dir} (--overwrite to render again)")
        return
    visible_share = render_content(mesh_path, content_dir, settings, device=device, backend=args.rasterizer,
                                   log=tqdm.write)
    shares = ", ".join(f"{100 * float(s):.0f}%" for s in visible_share)
    tqdm.write(f"{mesh_path.stem}: {len(settings.azimuths)} views in {content_dir} (vertices visible: {shares})")


if __name__ == "__main__":
    main()
