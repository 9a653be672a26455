"""Speed of the style transfer step (prints figures, asserts nothing).

1. Seconds per iteration at each scale with RRPS's settings (2 views, 512 px final, 3 scales, 2048 result
   and 5000 style samples) and VGG16 (random weights: the same arithmetic as ImageNet's), with the full
   hypercolumn covariance (RRPS) and with per-layer covariances; the share of each iteration spent outside
   the network's forward and backward passes; a whole-run estimate against the original RRPS code
   (measured on a 2-core machine: about 9.5 s, 17.5 s and 22 s per iteration at 128, 256 and 512 px);
   and how much the REMD of the subspace neighbour search exceeds the exact REMD on the same samples.
2. The CPU profile of run.py end to end for one content-style pair.

    python -m bench.bench_stylize            # full (about 5 minutes on 2 cores)
    python -m bench.bench_stylize --quick    # 1 iteration per scale at 256 px, a 2-iteration CPU profile
Uses ../shared/data/rrps when present (a real face and style), synthetic images otherwise.
"""
import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from models.features import load_feature_network
from utils.device import keep_freed_memory
from utils.io.landmarks import load_landmarks
from utils.style.profiles import CPU_PROFILE, PROFILE_NETWORKS
from utils.style.strotss_fast import hypercolumns, remd, sample_positions
from utils.style.stylize import DeformableStyleTransfer, ScaleProblem, StylizeSettings, stylize_views
from utils.style.io import ContentViews, StyleExemplar, prepare_inputs

ROOT = Path(__file__).resolve().parents[1]
RRPS_DATA = ROOT.parent / "shared" / "data" / "rrps"
RRPS_SECONDS_PER_ITERATION = {128: 9.5, 256: 17.5, 512: 22.0}
RRPS_ITERATIONS = 150
VERTICES = 50_000


class Clock:
    """Wall-clock and process CPU seconds (CPU / threads approximates wall time on an idle machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = (time.process_time() - self.cpu) / torch.get_num_threads()


def face_inputs(size):
    """ContentViews (2 views, ``size`` px, 50k fake vertices seen by both) and a StyleExemplar."""
    import cv2

    from utils.io.images import read_image_array

    if RRPS_DATA.is_dir():
        content = RRPS_DATA / "content" / "00319"
        images = [read_image_array(content / f"content{k + 1}.jpg") for k in range(2)]
        points = [np.loadtxt(content / f"content_pts{k + 1}.txt") for k in range(2)]
        style = StyleExemplar("1", read_image_array(RRPS_DATA / "style" / "1.png"),
                              load_landmarks(RRPS_DATA / "style" / "1.txt"))
    else:
        rng = np.random.default_rng(0)
        images = [cv2.GaussianBlur(rng.random((512, 512, 3)).astype(np.float32), (0, 0), 8) for _ in range(2)]
        angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
        points = [256 + np.stack([150 * np.cos(angle), 200 * np.sin(angle)], 1)] * 2
        style = StyleExemplar("synthetic", images[0][::-1].copy(), points[0] * [1.1, 0.95])
    scale = size / images[0].shape[0]
    tensors = [torch.from_numpy(cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)
               for im in images]
    side = int(VERTICES ** 0.5)
    grid = np.stack(np.meshgrid(np.linspace(0.25, 0.75, side), np.linspace(0.2, 0.85, side)), -1)
    grid = torch.tensor(grid.reshape(-1, 2) * size, dtype=torch.float32)
    verts2d = torch.stack([grid, grid + 0.02 * size * torch.tensor([1.0, 0.0])], 1)
    content = ContentViews("face", torch.stack(tensors), torch.tensor(np.stack(points) * scale, dtype=torch.float32),
                           verts2d, torch.ones(len(grid), 2, dtype=torch.bool), [-10.0, 10.0], [15.0, 15.0])
    return content, style


def time_network(network, images, repeats):
    """Mean seconds (wall, cpu/threads) of the network's forward and backward alone on a batch (gradient w.r.t.
    the input only) over ``repeats`` runs."""
    images = images.detach().requires_grad_(True)
    with Clock() as clock:
        for _ in range(repeats):
            features = network(images)
            torch.autograd.backward(features, [torch.ones_like(f) for f in features])
    return clock.wall / repeats, clock.cpu / repeats


def search_excess(transfer, problem):
    """How much the REMD of the subspace search's matching exceeds the exact REMD on the current outputs
    (relative, worst item; the CPU module, where the search runs); 0 without a subspace search."""
    if problem.target.search is None:
        return 0.0
    with torch.no_grad():
        unwarped, warped, _, _ = transfer.render(problem.level)
        positions = sample_positions(problem.size, problem.size, transfer.settings.result_samples,
                                     torch.Generator().manual_seed(1))
        columns = hypercolumns(transfer.network(torch.cat([warped, unwarped])), positions, (problem.size,) * 2)
        samples = torch.cat(columns, dim=-1)  # remd compares directions: no normalising needed
        exact = remd(samples, problem.target.unit)
        found = remd(samples, problem.target.unit, search=problem.target.search)
    return float(((found - exact) / exact).max())


def time_scales(inputs, network, settings, iterations):
    """Per scale: (size, wall s/iteration, cpu s/iteration, network wall s, network cpu s, REMD search excess)."""
    rows = []
    for scale in range(settings.scales):
        transfer = DeformableStyleTransfer(inputs, network, settings, progress=False)
        problem = ScaleProblem(inputs, network, settings, scale, transfer.generator)
        transfer.step(problem)  # warm-up
        with Clock() as clock:
            for _ in range(iterations):
                transfer.step(problem)
        unwarped, warped, _, _ = transfer.render(problem.level)
        network_wall, network_cpu = time_network(network, torch.cat([warped, unwarped]), iterations)
        rows.append((problem.size, clock.wall / iterations, clock.cpu / iterations, network_wall, network_cpu,
                     search_excess(transfer, problem)))
    return rows


def report_scales(label, rows):
    print(f"\n{label}")
    print("  size   s/iter (wall)   s/iter (cpu/threads)   network fwd+bwd (cpu)   outside network   RRPS s/iter"
          "   REMD search excess")
    for size, wall, cpu, net_wall, net_cpu, excess in rows:
        outside = max(0.0, 1.0 - net_cpu / cpu)
        rrps = RRPS_SECONDS_PER_ITERATION.get(size, float("nan"))
        print(f"  {size:4d}   {wall:13.2f}   {cpu:20.2f}   {net_cpu:21.2f}   {outside:15.0%}   {rrps:11.1f}"
              f"   {excess:18.2%}")
    if any(row[0] not in RRPS_SECONDS_PER_ITERATION for row in rows):
        return  # --quick: other sizes than RRPS's, no whole-run comparison
    ours = RRPS_ITERATIONS * sum(row[2] for row in rows)
    theirs = RRPS_ITERATIONS * sum(RRPS_SECONDS_PER_ITERATION[row[0]] for row in rows)
    print(f"  whole run ({RRPS_ITERATIONS} iterations per scale, cpu/threads): {ours / 60:.1f} min; "
          f"RRPS {theirs / 60:.1f} min; speed-up {theirs / ours:.2f}x")


def bench_rrps_settings(iterations, image_size, covariances):
    content, style = face_inputs(image_size)
    inputs = prepare_inputs(content, style)
    network = load_feature_network("vgg16-random")
    settings = StylizeSettings(image_size=image_size)
    for covariance in covariances:
        rows = time_scales(inputs, network, replace(settings, covariance=covariance), iterations)
        report_scales(f"RRPS settings, VGG16, {covariance} covariance, {torch.get_num_threads()} threads", rows)


def bench_cpu_profile(iterations):
    settings = CPU_PROFILE
    if iterations is not None:
        settings = replace(settings, iterations=iterations)
    content, style = face_inputs(settings.image_size)
    network = load_feature_network(PROFILE_NETWORKS["cpu"])
    with Clock() as clock:
        stylize_views(prepare_inputs(content, style), network, settings, progress=False)
    print(f"\nCPU profile end to end ({settings.image_size} px, {settings.scales} scales x {settings.iterations} "
          f"iterations, {network.name}): {clock.wall:.0f} s wall, {clock.cpu:.0f} s cpu/threads")


def main():
    parser = argparse.ArgumentParser(description="speed of the style transfer step")
    parser.add_argument("--quick", action="store_true", help="1 iteration per scale, 256 px, short CPU profile")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per scale (after a warm-up)")
    parser.add_argument("--no-profile", action="store_true", help="skip the CPU profile's end-to-end run")
    args = parser.parse_args()
    torch.manual_seed(0)
    keep_freed_memory()
    if args.quick:
        bench_rrps_settings(iterations=1, image_size=256, covariances=("layers",))
    else:
        bench_rrps_settings(iterations=args.iterations, image_size=512, covariances=("full", "layers"))
    if not args.no_profile:
        bench_cpu_profile(iterations=2 if args.quick else None)


if __name__ == "__main__":
    main()
