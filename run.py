"""Step 4 of RRPS: stylize every content view of a mesh jointly with a style exemplar (DST + STROTSS).

For each content folder (example/content/<name>/, written by rendering.py) and each style exemplar
(example/style/<style>.png with its landmarks), the K views are optimised together: each takes the
exemplar's texture (STROTSS style loss) and its geometry (a thin-plate-spline warp pulling the face's
landmarks towards the exemplar's, turned to the view's azimuth), and the views agree in colour at every
vertex seen by two of them. Outputs go to output/<name>/<style>/ (stylized_<k>.png, unwarped_<k>.png,
verts2d_warped.npy, params.json, intermediate/).

    python run.py                                # every content folder x every style in example/
    python run.py --content hopper --style astronaut_cartoon --iterations 50
"""
import argparse
import time
from dataclasses import replace
from pathlib import Path

from models.features import NETWORK_CHOICES, load_feature_network
from utils.device import resolve_device
from utils.errors import InputError, cli_entry
from utils.images import list_images
from utils.stylize import StylizeSettings, stylize_views
from utils.stylize_io import load_content_views, load_style, output_dir, prepare_inputs, save_result

# ---- inputs and outputs
CONTENT_DIR = "example/content"
STYLE_DIR = "example/style"
OUTPUT_DIR = "output"
CONTENT = None  # content folder names to stylize (None: all)
STYLE = None  # style names (file stems) to use (None: all)

# ---- machine
DEVICE = "auto"  # "auto", "cpu", "cuda"
PROFILE = "auto"  # "gpu": RRPS's settings; "cpu": smaller and faster; "auto": by device
NETWORK = None  # None: the profile's; else one of models.features.NETWORK_CHOICES
ALLOW_DOWNLOAD = False  # may VGG16's ImageNet weights be downloaded when missing
SEED = 0

# ---- the optimisation (RRPS's defaults; the CPU profile below overrides some)
IMAGE_SIZE = 512
SCALES = 3
ITERATIONS = 150  # per scale
STYLE_WEIGHT = 20.0
CONTENT_WEIGHT = 0.0
WARP_WEIGHT = 5.0
TV_WEIGHT = 30.0
CONSISTENCY_WEIGHT = 20.0
OPTIMIZER = "adadelta"
LEARNING_RATE = 1.0
WARP_LR_FACTOR = 10.0
RESULT_SAMPLES = 2048
STYLE_SAMPLES = 5000
COVARIANCE = "full"
CHECKPOINT_EVERY = 50

GPU_PROFILE = dict(network="auto")
# the CPU profile: one pair in about 5 minutes on 2 cores; the warp learns faster to move as far in fewer steps
CPU_PROFILE = dict(network="efficientnet-lite0", image_size=256, iterations=50, warp_lr_factor=30.0,
                   result_samples=1024, style_samples=2048, covariance="layers", checkpoint_every=25)
FLAG_TYPES = {"image-size": int, "scales": int, "iterations": int, "style-weight": float, "content-weight": float,
              "warp-weight": float, "tv-weight": float, "consistency-weight": float, "learning-rate": float,
              "warp-lr-factor": float, "result-samples": int, "style-samples": int, "checkpoint-every": int}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--content-dir", default=CONTENT_DIR)
    add("--style-dir", default=STYLE_DIR)
    add("--output", default=OUTPUT_DIR)
    add("--content", nargs="+", default=CONTENT, help="content folder names (default: all)")
    add("--style", nargs="+", default=STYLE, help="style names (default: all)")
    add("--device", default=DEVICE)
    add("--profile", choices=("auto", "gpu", "cpu"), default=PROFILE)
    add("--network", choices=NETWORK_CHOICES, default=NETWORK, help="default: the profile's")
    add("--allow-download", action="store_true", default=ALLOW_DOWNLOAD)
    add("--seed", type=int, default=SEED)
    for flag, kind in FLAG_TYPES.items():  # default None: the profile's value, then this file's constant
        add(f"--{flag}", type=kind, default=None)
    add("--optimizer", choices=("adadelta", "adam"), default=None)
    add("--covariance", choices=("full", "layers"), default=None)
    return parser.parse_args(argv)


def choose_settings(args, device):
    """StylizeSettings, the network name and the profile: this file's constants, then the profile's values,
    then every flag that was given."""
    profile = args.profile if args.profile != "auto" else ("gpu" if device.type == "cuda" else "cpu")
    chosen = dict(GPU_PROFILE if profile == "gpu" else CPU_PROFILE)
    network = args.network or chosen.pop("network")
    chosen.pop("network", None)
    settings = StylizeSettings(image_size=IMAGE_SIZE, scales=SCALES, iterations=ITERATIONS, style_weight=STYLE_WEIGHT,
                               content_weight=CONTENT_WEIGHT, warp_weight=WARP_WEIGHT, tv_weight=TV_WEIGHT,
                               consistency_weight=CONSISTENCY_WEIGHT, optimizer=OPTIMIZER, learning_rate=LEARNING_RATE,
                               warp_lr_factor=WARP_LR_FACTOR, result_samples=RESULT_SAMPLES,
                               style_samples=STYLE_SAMPLES, covariance=COVARIANCE, checkpoint_every=CHECKPOINT_EVERY,
                               seed=args.seed)
    names = [flag.replace("-", "_") for flag in FLAG_TYPES] + ["optimizer", "covariance"]
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return replace(settings, **{**chosen, **given}), network, profile


def select(paths, names, what):
    """Keep the paths whose stem is in ``names`` (all when None); an unknown name is an InputError."""
    if names is None:
        return paths
    by_name = {p.stem if p.is_file() else p.name: p for p in paths}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(f"{what} {', '.join(missing)} not found (available: {', '.join(sorted(by_name)) or 'none'})")
    return [by_name[n] for n in names]


def load_pairs(args, device):
    """Every selected (content views, style exemplar) pair, all read and checked before any work starts."""
    content_root, style_root = Path(args.content_dir), Path(args.style_dir)
    folders = sorted(p for p in content_root.iterdir() if p.is_dir()) if content_root.is_dir() else []
    folders = select(folders, args.content, f"content folder(s) in {content_root}:")
    styles = select(list_images(style_root), args.style, f"style(s) in {style_root}:")
    if not folders:
        raise InputError(f"{content_root}: no content folders; run rendering.py first")
    if not styles:
        raise InputError(f"{style_root}: no style images (.png or .jpg with a landmarks .txt beside each)")
    contents = [load_content_views(folder, device) for folder in folders]
    exemplars = [load_style(path) for path in styles]
    return [(content, style) for content in contents for style in exemplars]


def stylize_pair(content, style, network, settings, output_root, device, run_info):
    """Stylize one mesh's views with one exemplar and write output/<name>/<style>/; returns that folder."""
    folder = output_dir(output_root, content.name, style.name)
    print(f"{content.name} x {style.name} -> {folder}")
    inputs = prepare_inputs(content, style, device)
    start = time.time()
    result = stylize_views(inputs, network, settings)
    params = dict(run_info, content=content.name, style=style.name, settings=settings.as_dict(),
                  seconds=round(time.time() - start, 1))
    save_result(folder, result, inputs, params)
    return folder


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    settings, network_name, profile = choose_settings(args, device)
    pairs = load_pairs(args, device)
    network = load_feature_network(network_name, device, allow_download=args.allow_download)
    run_info = dict(profile=profile, device=str(device), network=network.name, network_reason=network.reason)
    for content, style in pairs:
        stylize_pair(content, style, network, settings, args.output, device, run_info)


if __name__ == "__main__":
    main()
