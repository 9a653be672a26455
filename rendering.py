"""Step 2 of RRPS: render every mesh from a few views into content images.

    python rendering.py                      # every mesh in example/models/
    python rendering.py example/models/hopper.obj --image-size 256 --azimuths -15 0 15

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
from utils.io import layout
from utils.io.files import check_writable
from utils.io.mesh import list_meshes
from utils.settings import add_flags, flag_values

# ---- parameters -------------------------------------------------------------------------------------------
MODELS_DIR = layout.MODELS_DIR  # meshes to render (.obj with vertex colours or UV texture, .ply)
CONTENT_DIR = layout.CONTENT_DIR  # one folder per mesh is written here
DEVICE = "auto"  # "auto" (CUDA if available), "cpu", "cuda"
RASTERIZER = "auto"  # "auto" (the fast one on CPU), "fast", "pytorch3d"
OVERWRITE = False  # re-render meshes whose outputs are already up to date
# How the views are rendered: RenderSettings (utils/rendering/content.py) holds every setting with RRPS's default
# (two views at -10 and +10 degrees, 512 px, unlit), each with a flag. Write here only what you change,
# e.g. dict(azimuths=[-15.0, 0.0, 15.0], light=0.3).
RENDER = dict()
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("meshes", nargs="*", help=f"mesh files (default: every mesh in {MODELS_DIR})")
    parser.add_argument("--out", default=CONTENT_DIR, help="content root folder")
    parser.add_argument("--device", default=DEVICE)
    parser.add_argument("--rasterizer", default=RASTERIZER, choices=["auto", "fast", "pytorch3d"])
    parser.add_argument("--overwrite", action="store_true", default=OVERWRITE)
    add_flags(parser, RenderSettings(**RENDER), "views (RenderSettings)", aliases={"image_size": ["--size"]})
    return parser.parse_args()


def render_settings(args):
    """RenderSettings: its defaults, then RENDER, then the flags given (elevations default to 0 per azimuth)."""
    try:
        return RenderSettings(**{**RENDER, **flag_values(args, RenderSettings)})
    except ValueError as err:
        raise InputError(f"--azimuths / --elevations: {err}") from None


@cli_entry
def main():
    args = parse_args()
    meshes = [Path(m) for m in args.meshes] or list_meshes(MODELS_DIR)
    if not meshes:
        raise InputError(f"{MODELS_DIR}: no .obj or .ply meshes found; put a mesh there or name one")
    settings = render_settings(args)
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
