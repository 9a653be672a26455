"""Step 4 of RRPS: stylize every content view of a mesh jointly with a style exemplar (DST + STROTSS).

For each content folder (example/content/<name>/, written by rendering.py) and each style exemplar
(example/style/<style>.png with its landmarks), the K views are optimised together: each takes the
exemplar's texture (STROTSS style loss) and its geometry (a thin-plate-spline warp pulling the face's
landmarks towards the exemplar's, turned to the view's azimuth), and the views agree in colour at every
vertex seen by two of them. Then the stylized mesh is reconstructed from the warped vertex projections and
the stylized views (triangulation, then refinement by differentiable rendering), and its colours are styled
all the way round (step 4c: the same style loss on renders from views around the head, anchored to the
stylized views where they see the surface). Outputs go to
output/<name>/<style>/ (stylized_<k>.png, unwarped_<k>.png, verts2d_warped.npy, mesh.obj, metrics.json,
params.json, intermediate/, complete.json last), and output/index.html shows them all.

    python run.py                                # every content folder x every style in example/
    python run.py --content hopper --style astronaut_cartoon --iterations 50
    python run.py --pairs random --styles-per-content 3    # RRPS's way: 3 random styles per mesh, seeded
    python run.py --executor ray --ray-address auto        # each pair a task on a Ray cluster (README)

Pairs already complete are skipped (--force redoes them); a pair with bad input is reported and the others go
on; the run ends with a summary and exits non-zero if any pair failed.
"""
import argparse
import functools
import sys
import time
from dataclasses import replace
from pathlib import Path

from models.features import NETWORK_CHOICES, load_feature_network
from utils.batch import SELECTION_MODES, run_batch, select_pairs
from utils.rendering.cameras import load_cameras
from utils.device import keep_freed_memory, resolve_device, run_memory_estimate, warn_if_short_of_memory
from utils.errors import InputError, cli_entry
from utils.io.files import check_writable
from utils.io import layout
from utils.io.images import list_images
from utils.io.layout import ContentFolder, PairFolder, content_folders
from utils.io.mesh import load_mesh
from utils.geometry.io import save_reconstruction
from utils.geometry.reconstruct import ReconstructionSettings, reconstruct_mesh
from utils.report.page import write_report
from utils.settings import add_flags, changed, from_flags
from utils.style.profiles import CPU_PROFILE, GPU_PROFILE, PROFILE_NETWORKS, PROFILES, profile_for
from utils.style.stylize import stylize_views
from utils.style.all_round import AllRoundSettings, style_all_round
from utils.style.io import load_content_views, load_style, prepare_inputs, save_all_round, save_result

# ---- inputs and outputs
CONTENT_DIR = layout.CONTENT_DIR
STYLE_DIR = layout.STYLE_DIR
OUTPUT_DIR = layout.OUTPUT_DIR
CONTENT = None  # content folder names to stylize (None: all)
STYLE = None  # style names (file stems) to use (None: all)
MODELS_DIR = layout.MODELS_DIR  # the meshes, when a content folder's cameras.json does not name its mesh
PAIRS = "all"  # "all": every content with every style; "random": RRPS's way, STYLES_PER_CONTENT each, seeded
STYLES_PER_CONTENT = 1
FORCE = False  # redo pairs that are already complete
REPORT = True  # write output/index.html at the end

# ---- 3D reconstruction (step 4b)
RECONSTRUCT = True  # False stops after the image-space stylization
# ReconstructionSettings (utils/geometry/reconstruct.py) holds its settings and defaults; write here only what
# you change, e.g. dict(refine=False) for triangulation only, as RRPS. Flags: --recon-<setting>.
RECONSTRUCTION = dict()

# ---- the style all the way round (step 4c): the reconstructed mesh's colours optimised through the rasterizer
# from views around the head. AllRoundSettings (utils/style/all_round.py) holds its settings; write here only
# what you change, e.g. dict(iterations=60) or dict(enabled=False) for RRPS's front-only colours.
# Flags: --all-round-<setting>.
ALL_ROUND = dict()

# ---- machine
DEVICE = "auto"  # "auto", "cpu", "cuda"
PROFILE = "auto"  # "gpu": RRPS's settings; "cpu": smaller and faster; "auto": by device (utils/style/profiles.py)
NETWORK = None  # None: the profile's; else one of models.features.NETWORK_CHOICES
ALLOW_DOWNLOAD = False  # may VGG16's ImageNet weights be downloaded when missing
EXECUTORS = ("local", "ray")  # run.py chooses between utils.batch.run_batch and utils.batch_ray.run_batch_ray
EXECUTOR = "local"  # "local": pairs one after another here; "ray": one Ray task per pair (README: on a cluster)
RAY_ADDRESS = None  # with "ray": a running cluster ("auto", "host:6379"); None starts a local Ray for the run
CPUS_PER_TASK = 1  # with "ray": CPUs (and torch threads) per pair; a GPU per pair too where there are GPUs

# ---- the optimisation: StylizeSettings (utils/style/stylize.py) holds every setting with RRPS's default, each
# with a flag (--iterations 50). Write here only what you change, e.g. dict(iterations=50, style_weight=10.0);
# it applies on top of the profile, and the flags on top of it.
STYLIZE = dict()



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
    add("--executor", choices=EXECUTORS, default=EXECUTOR)
    add("--ray-address", default=RAY_ADDRESS, help="with --executor ray (default: a local Ray for this run)")
    add("--cpus-per-task", type=int, default=CPUS_PER_TASK, help="with --executor ray")
    add("--pairs", choices=SELECTION_MODES, default=PAIRS, help="every content x every style, or random styles")
    add("--styles-per-content", type=int, default=STYLES_PER_CONTENT, help="with --pairs random (seeded by --seed)")
    add("--force", action="store_true", default=FORCE, help="redo pairs that are already complete")
    add("--no-report", dest="report", action="store_false", default=REPORT)
    add("--no-reconstruct", dest="reconstruct", action="store_false", default=RECONSTRUCT)
    add_flags(parser, replace(GPU_PROFILE, **STYLIZE), "style transfer (StylizeSettings)",
              note=f"defaults: the GPU profile's; the CPU profile has {changed(GPU_PROFILE, CPU_PROFILE)}")
    add_flags(parser, ReconstructionSettings(**RECONSTRUCTION), "reconstruction (ReconstructionSettings)",
              prefix="recon-", skip=("device",),
              aliases={"refine": ["--refine"], "iterations": ["--refine-iterations"]})
    add_flags(parser, AllRoundSettings(**ALL_ROUND), "style all round, the 3D pass (AllRoundSettings)",
              prefix="all-round-")
    return parser.parse_args(argv)


def choose_settings(args, device):
    """StylizeSettings, the network name and the profile: the profile's settings, then STYLIZE, then the flags."""
    profile = profile_for(args.profile, device)
    settings = replace(PROFILES[profile], **STYLIZE)
    return from_flags(args, settings), args.network or PROFILE_NETWORKS[profile], profile


def reconstruction_settings(args, device):
    """ReconstructionSettings: its defaults, then RECONSTRUCTION, then the --recon-* flags; on ``device``."""
    return from_flags(args, ReconstructionSettings(**RECONSTRUCTION, device=str(device)), prefix="recon-")


def select(paths, names, what):
    """Keep the paths whose stem is in ``names`` (all when None); an unknown name is an InputError."""
    if names is None:
        return paths
    by_name = {p.stem if p.is_file() else p.name: p for p in paths}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(f"{what} {', '.join(missing)} not found (available: {', '.join(sorted(by_name)) or 'none'})")
    return [by_name[n] for n in names]


def problems_of(paths, check):
    """Run ``check`` on every path, keeping bad input aside: {name: reason} of those that raised InputError."""
    problems = {}
    for path in paths:
        try:
            check(path)
        except InputError as err:
            problems[path.stem if path.is_file() else path.name] = str(err)
    return problems


def check_inputs(args, seed):
    """Every selected content folder and style exemplar, read and checked (on the CPU, one at a time) before any
    work starts; a mesh likely to need more memory than there is is said now. ``seed`` draws the random pairs.

    Returns (pairs, problem_of) where problem_of(pair) is the reason a pair cannot run (bad content or style
    input), or None. Each pair's inputs are read again when it runs (``pair_inputs``).
    """
    content_root, style_root = Path(args.content_dir), Path(args.style_dir)
    folders = [folder.path for folder in content_folders(content_root)]
    folders = select(folders, args.content, f"content folder(s) in {content_root}:")
    styles = select(list_images(style_root), args.style, f"style(s) in {style_root}:")
    if not folders:
        raise InputError(f"{content_root}: no content folders; run rendering.py first")
    if not styles:
        raise InputError(f"{style_root}: no style images (.png or .jpg with a landmarks .txt beside each)")

    def check_content(folder):
        views = load_content_views(folder, "cpu")
        if args.reconstruct:
            mesh_of(folder, MODELS_DIR)  # a missing mesh fails now, not after minutes of stylization
        warn_if_short_of_memory(f"{folder.name} ({len(views.verts2d)} vertices)",
                                run_memory_estimate(len(views.verts2d)))

    content_problems = problems_of(folders, check_content)
    style_problems = problems_of(styles, load_style)
    pairs = select_pairs([f.name for f in folders], [p.stem for p in styles], args.pairs, args.styles_per_content,
                         seed)
    if not pairs:
        raise InputError(f"no pairs selected (--pairs {args.pairs}, --styles-per-content {args.styles_per_content})")

    def problem_of(pair):
        return content_problems.get(pair[0]) or style_problems.get(pair[1])

    reasons = list(dict.fromkeys(problem_of(pair) for pair in pairs))
    if None not in reasons:
        raise InputError(reasons[0] if len(reasons) == 1 else f"no pair can run: {'; '.join(reasons)}")
    return pairs, problem_of


def mesh_of(content_folder, models_dir):
    """The mesh a content folder was rendered from (``ContentFolder.mesh``); an InputError when it is not there."""
    folder = ContentFolder(content_folder)
    path = folder.mesh(models_dir)
    if path is None:
        raise InputError(f"{content_folder}: its mesh ({', '.join(map(str, folder.mesh_candidates(models_dir)))}) "
                         "is not there; put it back or use --no-reconstruct")
    return path


def pair_inputs(args, device):
    """inputs_of(pair) -> (ContentViews, StyleExemplar), read from the input folders (the last content is kept)."""
    content_views = functools.lru_cache(maxsize=1)(lambda name: load_content_views(Path(args.content_dir) / name,
                                                                                   device))
    style_paths = {path.stem: path for path in list_images(Path(args.style_dir))}
    return lambda pair: (content_views(pair[0]), load_style(style_paths[pair[1]]))


def stylize_pair(content, style, network, settings, args, device, run_info):
    """Stylize one mesh's views with one exemplar and write output/<name>/<style>/; returns a summary dict."""
    folder = PairFolder.of(args.output, content.name, style.name)
    print(f"{content.name} x {style.name} -> {folder}")
    inputs = prepare_inputs(content, style, device)
    start = time.time()
    result = stylize_views(inputs, network, settings)
    params = dict(run_info, content=content.name, style=style.name, settings=settings.as_dict(),
                  seconds=round(time.time() - start, 1))
    save_result(folder, result, inputs, params)
    if not args.reconstruct:
        return {"stylize_seconds": params["seconds"]}
    content_folder = ContentFolder(Path(args.content_dir) / content.name)
    cameras, P, image_size, views = load_cameras(content_folder.cameras, device)
    recon = reconstruction_settings(args, device)
    reconstruction = reconstruct_mesh(load_mesh(mesh_of(content_folder, MODELS_DIR)), cameras, P, image_size,
                                      result.stylized, result.verts2d_warped, content.visible, recon)
    all_round = from_flags(args, AllRoundSettings(**ALL_ROUND), prefix="all-round-")
    if all_round.enabled:
        mesh_in = load_mesh(mesh_of(content_folder, MODELS_DIR))
        reconstruction.mesh, pass_result = style_all_round(
            mesh_in, reconstruction.mesh, cameras, views, result.stylized, content.visible, style.channels_first,
            style.head, network, all_round, background=content.background, back_mask=style.hair,
            content_parts=inputs.content_parts)
        reconstruction.metrics["all_round"] = save_all_round(folder, pass_result, all_round)
    save_reconstruction(folder, reconstruction)
    return {"stylize_seconds": params["seconds"], "total_seconds": round(time.time() - start, 1)}


def run_pairs(args, pairs, make_runner):
    """Run the pairs with the chosen executor (each locks, skips, runs and marks a pair with
    utils.batch.attempt_pair); returns the BatchSummary. make_runner() -> run_pair: called once per process that
    runs pairs (here, or in each Ray worker)."""

    def folder_of(pair):
        return PairFolder.of(args.output, *pair).path

    if args.executor == "local":
        return run_batch(pairs, folder_of, make_runner(), force=args.force)
    from utils.batch_ray import run_batch_ray  # Ray is imported only when it is asked for

    return run_batch_ray(pairs, folder_of, make_runner, force=args.force, address=args.ray_address,
                         cpus_per_task=args.cpus_per_task, use_gpu=args.device != "cpu")


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    check_writable(args.output, "--output")  # before minutes of work, not after
    device = resolve_device(args.device)
    keep_freed_memory(device)
    settings, network_name, profile = choose_settings(args, device)
    pairs, problem_of = check_inputs(args, settings.seed)  # all checked before any work

    def make_runner():
        """run_pair for the process that runs the pairs (this one, or each Ray worker): the network loads once."""
        here = resolve_device(args.device)
        keep_freed_memory(here)
        network = load_feature_network(network_name, here, allow_download=args.allow_download)
        run_info = dict(profile=profile, device=str(here), network=network.name, network_reason=network.reason)
        inputs_of = pair_inputs(args, here)

        def run_pair(pair):
            if problem_of(pair):
                raise InputError(problem_of(pair))
            return stylize_pair(*inputs_of(pair), network, settings, args, here, run_info)

        return run_pair

    summary = run_pairs(args, pairs, make_runner)
    try:
        if args.report:
            report = write_report(args.output, args.content_dir, args.style_dir, failures=summary.failed,
                                  device=device)
            print(f"report: {report}")
    finally:  # a report that cannot be written (a full disk) still leaves the batch's summary on the screen
        print("\n".join(summary.lines()))
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
