"""How much of the exemplar's style the stylized views carry, per feature network, on RRPS meshes x Face-of-Art styles.

    .venv/bin/python bench/bench_quality.py                            # 6 dev pairs, vgg16-hed and efficientnet-lite0
    .venv/bin/python bench/bench_quality.py --pairs 2 --networks vgg16-hed --iterations 20

Dev pairs: the first meshes of ../shared/data/rrps/meshes, each with a Face-of-Art style drawn with a fixed seed
(styles with their own landmarks). Content views are rendered and their landmarks detected once into a work folder
(rendering.py, correspondences.py; kept between runs). Each pair is stylized with the CPU profile (run.py), then
reconstructed (triangulation only). Per pair, in the head region (the content's footprint, the exemplar's
landmark hull grown to take hair and neck):

- colour: sliced Wasserstein distance in Lab from the stylized views' head pixels to the exemplar's head pixels,
  as a ratio to the content views' distance (1: no change, 0: the exemplar's palette);
- texture: distance of Gram matrices of a judge network's layers (masked to the head), same ratio; the judge is
  never the network being optimised (EfficientNet-Lite0 judges vgg16-hed runs, VGG16-HED judges the others);
- colour per part (face: skin, eyes, nose, lips; hair: the rest of the head above the neck): the same ratio between
  the stylized views' part (cut from the warped landmarks, utils/style/regions.py) and the exemplar's same part;
- landmarks: mean distance of the warped landmarks to their targets, as a ratio to the start;
- consistency: mean colour difference between views at vertices seen in both (stylized; content's in brackets);
- seconds of the image-space step per pair and per iteration, wall and CPU / threads (what the step would
  take alone on the machine's cores when others load it), and the machine's load (``uptime``).

A contact sheet per pair goes to bench/results/quality/<network>/<mesh>_<style>.png: content | exemplar | stylized
views | render of the reconstructed mesh. Prints a table; asserts nothing.

Tuning and held-out pairs: pick settings on the first meshes, report on the others with styles drawn with another
seed, none of them a tuning pair's style:

    bench/bench_quality.py --pairs 4 --networks vgg16-hed                                 # tune
    bench/bench_quality.py --pairs 8 --skip 4 --style-seed 1 --avoid-styles-of 4 --networks vgg16-hed  # report
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import run  # noqa: E402
from models.features import load_feature_network  # noqa: E402
from utils.geometry.reconstruct import ReconstructionSettings, reconstruct_mesh  # noqa: E402
from utils.io.images import save_image  # noqa: E402
from utils.io.mesh import load_mesh, to_pytorch3d  # noqa: E402
from utils.rendering.cameras import load_cameras  # noqa: E402
from utils.rendering.render import render_views  # noqa: E402
from utils.style.io import load_content_views, load_style, prepare_inputs  # noqa: E402
from utils.style.regions import REGIONS, content_footprint, part_masks  # noqa: E402
from utils.settings import add_flags, changed, from_flags  # noqa: E402
from utils.style.stylize import stylize_views  # noqa: E402

RRPS = ROOT.parent / "shared" / "data" / "rrps"
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "rrps-bench-quality"
RESULTS = ROOT / "bench" / "results" / "quality"
JUDGE_OF = {"vgg16-hed": "efficientnet-lite0"}  # every other network is judged by vgg16-hed
TARGETS = {"colour": 0.45, "texture": 0.75, "landmarks": 0.5}
PART_TARGET = 0.45  # colour ratio of each part
PARTS = {"face": ("skin", "eyes", "nose", "lips"), "hair": ("hair",)}  # measured parts: REGIONS they gather
DIRECTIONS = 64  # random projections of the sliced Wasserstein distance
QUANTILES = 256


def dev_pairs(count, seed=0, avoid=0):
    """[(mesh path, style image path)]: the first ``count`` meshes, each with a seeded random styled exemplar, none
    of them one of the first ``avoid`` pairs' styles under seed 0 (the tuning pairs')."""
    meshes = sorted((RRPS / "meshes").glob("*.obj"))[:count]
    styles = sorted(p for p in (RRPS / "style").glob("*.png") if p.with_suffix(".txt").is_file())
    tuned = {style for _, style in dev_pairs(avoid)} if avoid else set()
    chosen = random.Random(seed).sample([style for style in styles if style not in tuned], len(meshes))
    return list(zip(meshes, chosen))


def prepare_work(pairs, work):
    """Render the meshes and detect the content landmarks into ``work`` once (scripts skip what is there)."""
    (work / "models").mkdir(parents=True, exist_ok=True)
    (work / "style").mkdir(exist_ok=True)
    for mesh, style in pairs:
        link = work / "models" / mesh.name
        if not link.exists():
            link.symlink_to(mesh)
        for source in (style, style.with_suffix(".txt")):
            if not (work / "style" / source.name).exists():
                shutil.copy(source, work / "style" / source.name)
    commands = [["rendering.py", *[str(work / "models" / m.name) for m, _ in pairs], "--out", str(work / "content")],
                ["correspondences.py", "--content", str(work / "content"), "--style", str(work / "style"),
                 "--models", str(work / "models")]]
    for command in commands:
        subprocess.run([sys.executable, *command], cwd=ROOT, check=True, capture_output=True, text=True)


def lab_pixels(images, masks):
    """Lab colours of the masked pixels of all views: images (K, 3, H, W), masks (K, 1, H, W) -> (N, 3)."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(images.clamp(0, 1)).permute(0, 2, 3, 1).reshape(-1, 3)
    return lab[masks.permute(0, 2, 3, 1).reshape(-1) > 0.5]


def sliced_wasserstein(a, b, seed=0):
    """Sliced 1-Wasserstein distance between point sets a (N, 3), b (M, 3) (quantiles along random directions)."""
    directions = F.normalize(torch.randn(DIRECTIONS, a.shape[1], generator=torch.Generator().manual_seed(seed)), dim=1)
    levels = torch.linspace(0, 1, QUANTILES)
    qa = torch.quantile(a @ directions.T, levels, dim=0)
    qb = torch.quantile(b @ directions.T, levels, dim=0)
    return float((qa - qb).abs().mean())


def masked_grams(judge, images, masks):
    """Per judge layer (after the image itself), the Gram matrix of its features inside the masks: list of (C, C)."""
    with torch.no_grad():
        layers = judge(images)[1:]
    grams = []
    for layer in layers:
        weight = F.interpolate(masks, size=layer.shape[-2:], mode="area")
        flat, w = layer.flatten(2), weight.flatten(2)  # (K, C, P), (K, 1, P)
        grams.append(torch.einsum("kcp,kdp->cd", flat * w, flat) / w.sum().clamp(min=1))
    return grams


def gram_distance(first, second):
    """Mean over layers of the relative Frobenius distance of two lists of Gram matrices."""
    return float(sum((a - b).norm() / b.norm() for a, b in zip(first, second)) / len(first))


def part_colour_ratios(content, inputs, result, stylized_mask):
    """Colour ratio per measured part (``PARTS``): the stylized views' part (cut from the warped landmarks in
    their footprint) against the exemplar's same part, as a ratio to the content's part: {"colour_face": ..}."""
    def gathered(masks, names):  # (K, R, H, W) -> (K, 1, H, W)
        return masks[:, [REGIONS.index(n) for n in names]].sum(1, keepdim=True)

    stylized_parts = torch.stack([part_masks(points, mask[0]) for points, mask in
                                  zip(result.landmarks_warped.cpu().numpy(), stylized_mask.cpu().numpy())])
    ratios = {}
    for part, names in PARTS.items():
        exemplar = lab_pixels(inputs.style, gathered(inputs.style_parts, names))
        before = sliced_wasserstein(lab_pixels(content.images, gathered(inputs.content_parts, names)), exemplar)
        after = sliced_wasserstein(lab_pixels(result.stylized, gathered(stylized_parts, names)), exemplar)
        ratios[f"colour_{part}"] = after / before
    return ratios


def print_part_rows(rows):
    """The colour ratio per part, one line per pair and the mean, with the target."""
    names = [f"colour_{part}" for part in PARTS]
    print("  " + f"{'pair':16s} " + " ".join(f"{name:>12s}" for name in names))
    means = {name: sum(row[name] for row in rows.values()) / max(len(rows), 1) for name in names}
    for pair, row in {**rows, "mean": means}.items():
        print(f"  {pair:16s} " + " ".join(f"{row[name]:12.3f}" for name in names))
    worst = max((row[name] for row in rows.values() for name in names), default=0.0)
    print(f"  parts: worst {worst:.3f}, {'ok' if worst <= PART_TARGET else 'MISSED'} (each <= {PART_TARGET})")


def view_consistency(images, verts2d, visible):
    """Mean absolute colour difference between views 0 and 1 at the vertices both see: images (K, 3, S, S),
    verts2d (V, K, 2) pixel (x, y), visible (V, K)."""
    both = visible[:, 0] & visible[:, 1]
    size = images.shape[-1]
    grid = ((verts2d[both] + 0.5) / size * 2 - 1).transpose(0, 1).unsqueeze(1)  # (K, 1, P, 2)
    colours = F.grid_sample(images, grid.float(), align_corners=False)[:, :, 0]  # (K, 3, P)
    return float((colours[0] - colours[1]).abs().mean())


def reconstructed_render(folder, mesh_path, result, content):
    """The reconstructed mesh (triangulation, no refinement) rendered from the content's first view: (3, S, S)."""
    cameras, P, size, _ = load_cameras(folder / "cameras.json")
    settings = ReconstructionSettings(refine=False, device="cpu")
    mesh, _ = reconstruct_mesh(load_mesh(mesh_path), cameras, P, size, result.stylized, result.verts2d_warped,
                               content.visible, settings)
    with torch.no_grad():
        images, _ = render_views(to_pytorch3d(mesh), cameras[[0]], size)
    return images[0]


def square(image, size):
    """(3, H, W) -> (3, size, size): the longer side to ``size``, padded with white."""
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    resized = F.interpolate(image[None], size=(round(height * scale), round(width * scale)), mode="bilinear",
                            antialias=True, align_corners=False)[0]
    canvas = torch.ones(3, size, size)
    top, left = (size - resized.shape[1]) // 2, (size - resized.shape[2]) // 2
    canvas[:, top:top + resized.shape[1], left:left + resized.shape[2]] = resized
    return canvas


def measure_pair(mesh_path, style_path, network, judge, settings, work, sheet):
    """Stylize one pair and measure it; writes its contact sheet; returns {metric: value}."""
    folder = work / "content" / mesh_path.stem
    content = load_content_views(folder)
    style = load_style(work / "style" / style_path.name)
    inputs = prepare_inputs(content, style)
    start, cpu_start = time.time(), time.process_time()
    result = stylize_views(inputs, network, settings, progress=False)
    seconds, cpu_seconds = time.time() - start, (time.process_time() - cpu_start) / torch.get_num_threads()
    stylized_mask = content_footprint(result.stylized, content.background)
    exemplar = lab_pixels(inputs.style, inputs.style_mask)
    before = sliced_wasserstein(lab_pixels(content.images, inputs.content_mask), exemplar)
    after = sliced_wasserstein(lab_pixels(result.stylized, stylized_mask), exemplar)
    target_grams = masked_grams(judge, inputs.style, inputs.style_mask)
    texture_before = gram_distance(masked_grams(judge, content.images, inputs.content_mask), target_grams)
    texture_after = gram_distance(masked_grams(judge, result.stylized, stylized_mask), target_grams)
    start_error = (inputs.landmarks - inputs.targets).norm(dim=-1).mean()
    end_error = (result.landmarks_warped - inputs.targets).norm(dim=-1).mean()
    render = reconstructed_render(folder, mesh_path, result, content)
    size = content.images.shape[-1]
    panels = [content.images[0], square(torch.from_numpy(style.image).permute(2, 0, 1).float(), size),
              *result.stylized, render]
    save_image(sheet, torch.cat(panels, dim=2))
    iterations = settings.iterations * settings.scales
    parts = part_colour_ratios(content, inputs, result, stylized_mask)
    return dict(**parts, colour=after / before, texture=texture_after / texture_before,
                landmarks=float(end_error / start_error),
                consistency=view_consistency(result.stylized, result.verts2d_warped, content.visible),
                content_consistency=view_consistency(content.images, content.verts2d, content.visible),
                seconds=seconds, cpu_seconds=cpu_seconds, seconds_per_iteration=seconds / iterations,
                cpu_seconds_per_iteration=cpu_seconds / iterations)


def print_rows(name, rows):
    """One line per pair and the mean, with the targets."""
    print(f"\n{name}:\n  {'pair':16s} {'colour':>7s} {'texture':>7s} {'lmk':>6s} {'consist (content)':>17s} "
          f"{'s/pair wall':>11s} {'cpu':>6s} {'s/it wall':>9s} {'cpu':>5s}")
    rows = dict(rows)
    if rows:
        keys = next(iter(rows.values())).keys()
        rows["mean"] = {k: sum(r[k] for r in rows.values()) / len(rows) for k in keys}
    for pair, row in rows.items():
        print(f"  {pair:16s} {row['colour']:7.3f} {row['texture']:7.3f} {row['landmarks']:6.3f} "
              f"{row['consistency']:8.3f} ({row['content_consistency']:.3f}) {row['seconds']:11.0f} "
              f"{row['cpu_seconds']:6.0f} {row['seconds_per_iteration']:9.2f} {row['cpu_seconds_per_iteration']:5.2f}")
    if rows:
        print("  targets: " + ", ".join(f"{k} {'ok' if rows['mean'][k] <= v else 'MISSED'} (<= {v})"
                                       for k, v in TARGETS.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=6, help="dev pairs (one per mesh, up to 8)")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N dev pairs (measured before)")
    parser.add_argument("--style-seed", type=int, default=0, help="seed of the styles' draw (another: held-out)")
    parser.add_argument("--avoid-styles-of", type=int, default=0, metavar="N",
                        help="draw no style of the first N pairs under seed 0 (the tuning pairs)")
    parser.add_argument("--networks", nargs="+", default=["vgg16-hed", "efficientnet-lite0"])
    parser.add_argument("--work", type=Path, default=WORK, help="renders and landmarks, kept between runs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    add_flags(parser, run.CPU_PROFILE, "style transfer (run.py's CPU profile; e.g. --iterations 80 --image-size 320)")
    args = parser.parse_args()
    settings = from_flags(args, run.CPU_PROFILE)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1, 5 min), cores {os.cpu_count()}, "
          f"threads {torch.get_num_threads()}; settings {changed(run.CPU_PROFILE, settings) or 'CPU profile'}")
    pairs = dev_pairs(args.pairs, args.style_seed, args.avoid_styles_of)[args.skip:]
    prepare_work(pairs, args.work)
    summary = {}
    for name in args.networks:
        network = load_feature_network(name)
        judge = load_feature_network(JUDGE_OF.get(name, "vgg16-hed"), verbose=False)
        print(f"judge: {judge.name}")
        rows = {}
        for mesh, style in pairs:
            label = f"{mesh.stem} x {style.stem}"
            sheet = args.results / name / f"{mesh.stem}_{style.stem}.png"
            rows[label] = measure_pair(mesh, style, network, judge, settings, args.work, sheet)
            print(f"  {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[label].items()), flush=True)
        print_rows(network.name, rows)
        print_part_rows(rows)
        summary[network.name] = rows
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"quality_{'_'.join(args.networks)}.json").write_text(json.dumps(dict(settings=settings.as_dict(), results=summary), indent=1))
    print(f"\nload at the end: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}; sheets in {args.results}")


if __name__ == "__main__":
    main()
