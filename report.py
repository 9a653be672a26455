"""The run's report: output/index.html, to look at every (mesh, style) pair after a run.

    python report.py                          # output/ with example/ as the inputs
    python report.py --output runs/monday --azimuths -180 -135 -90 -45 0 45 90 135

For each pair: the content views, the style exemplar with its landmarks, the stylized views, the stylized
mesh before and after smoothing turned around the head (turntable strips, rendered when missing or older
than the mesh), the input, stylized and smoothed meshes in a 3D viewer (.glb files written beside the .obj when
missing or older) and the figures of metrics.json. Static files with relative links: open it offline.
"""
import argparse
from pathlib import Path

from utils.errors import InputError, cli_entry
from utils.io import layout
from utils.report.page import write_report
from utils.report.pictures import TurntableSettings
from utils.settings import add_flags, from_flags

# ---- parameters -------------------------------------------------------------------------------------------
OUTPUT_DIR = layout.OUTPUT_DIR  # the run's output folder; the report is written inside it
CONTENT_DIR = layout.CONTENT_DIR  # the content views the run used
STYLE_DIR = layout.STYLE_DIR  # the style exemplars the run used
MODELS_DIR = layout.MODELS_DIR  # the input meshes, when a content folder's cameras.json does not name its mesh
VIEWER = True  # write .glb files and show them in a 3D viewer (False: turntable pictures only)
RENDER = True  # render missing or stale turntables (False: show only the ones already there)
DEVICE = "auto"  # "auto" (CUDA if available), "cpu", "cuda"
RASTERIZER = "auto"  # "auto" (the fast one on CPU), "fast", "pytorch3d"
# The turntables: TurntableSettings (utils/report/pictures.py) holds every setting with its default (8 views from
# -60 to 60 degrees, 256 px, a headlight, a GIF), each with a flag. Write here only what you change,
# e.g. dict(azimuths=tuple(range(-180, 180, 45))).
TURNTABLE = dict()
# -----------------------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=OUTPUT_DIR, help="output folder of a run")
    parser.add_argument("--content-dir", default=CONTENT_DIR)
    parser.add_argument("--style-dir", default=STYLE_DIR)
    parser.add_argument("--models", default=MODELS_DIR, help="input meshes <name>.obj")
    parser.add_argument("--no-viewer", dest="viewer", action="store_false", default=VIEWER,
                        help="no 3D viewer (and no .glb files)")
    parser.add_argument("--no-render", dest="render", action="store_false", default=RENDER,
                        help="do not render turntables, show those already there")
    parser.add_argument("--device", default=DEVICE)
    parser.add_argument("--rasterizer", default=RASTERIZER, choices=["auto", "fast", "pytorch3d"])
    add_flags(parser, TurntableSettings(**TURNTABLE), "turntables (TurntableSettings)",
              aliases={"image_size": ["--size"]})
    return parser.parse_args()


@cli_entry
def main():
    args = parse_args()
    if not Path(args.output).is_dir():
        raise InputError(f"{args.output}: no such output folder; run run.py first or name one with --output")
    turntable = from_flags(args, TurntableSettings(**TURNTABLE)) if args.render else None
    index = write_report(args.output, args.content_dir, args.style_dir, turntable=turntable, device=args.device,
                         backend=args.rasterizer, models_root=args.models, viewer=args.viewer)
    print(f"report: {index} (open it in a browser)")


if __name__ == "__main__":
    main()
