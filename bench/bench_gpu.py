"""The CUDA path end to end, for the first session lent a GPU: rendering, the example pair with the GPU profile
(RRPS's settings), reconstruction; prints figures, asserts nothing.

    .venv/bin/python -m bench.bench_gpu                     # CUDA, the GPU profile
    .venv/bin/python -m bench.bench_gpu --device cpu --size 64 --image-size 32 --iterations 2   # a smoke run

Prints: the rasterizer ``auto`` picks and seconds to render the example's content views with it and with the
other one; per scale of the style transfer, seconds per iteration and the share of an iteration spent outside
the feature network's forward and backward passes; seconds of the whole image-space step and of the
reconstruction (with refinement). Works in a fresh temporary folder; example/ and output/ are not touched.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from models.features import load_feature_network
from utils.device import resolve_device
from utils.geometry.reconstruct import ReconstructionSettings, reconstruct_mesh
from utils.io.mesh import load_mesh
from utils.io.layout import ContentFolder, style_landmarks
from utils.rendering.cameras import load_cameras
from utils.rendering.content import RenderSettings, render_content
from utils.rendering.raster import resolve_backend
from utils.style.io import load_content_views, load_style, prepare_inputs
from utils.style.profiles import GPU_PROFILE, PROFILE_NETWORKS
from utils.style.stylize import DeformableStyleTransfer, ScaleProblem, stylize_views

ROOT = Path(__file__).resolve().parents[1]
MESH = ROOT / "example" / "models" / "hopper.obj"
STYLE = ROOT / "example" / "style" / "astronaut_caricature.png"


def seconds(function, device):
    """(result, wall seconds) of function(), the device synchronised before and after."""
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    synchronise()
    start = time.perf_counter()
    result = function()
    synchronise()
    return result, time.perf_counter() - start


def render_both(work, size, device):
    """Render the example mesh with the ``auto`` rasterizer and with the other one; prints both timings."""
    auto = resolve_backend("auto", device)
    other = "fast" if auto == "pytorch3d" else "pytorch3d"
    settings = RenderSettings(image_size=size)
    for backend in ("auto", other):
        folder = work / "content" / (MESH.stem if backend == "auto" else f"{MESH.stem}_{backend}")
        _, took = seconds(lambda: render_content(MESH, folder, settings, device, backend), device)
        print(f"rendering  {backend if backend != 'auto' else f'auto ({auto})':18s} {took:8.2f} s")
    return work / "content" / MESH.stem


def time_scales(inputs, network, settings, iterations, device):
    """Per scale: (size, s/iteration, share outside the network's forward and backward)."""
    rows = []
    for scale in range(settings.scales):
        transfer = DeformableStyleTransfer(inputs, network, settings, progress=False)
        problem = ScaleProblem(inputs, network, settings, scale, transfer.generator)
        transfer.step(problem)  # warm-up (cuDNN algorithm choice, allocator)
        _, step = seconds(lambda: [transfer.step(problem) for _ in range(iterations)], device)
        with torch.no_grad():
            unwarped, warped, _, _ = transfer.render(problem.level)
        images = torch.cat([warped, unwarped]).requires_grad_(True)

        def network_passes():
            for _ in range(iterations):
                features = network(images)
                torch.autograd.backward(features, [torch.ones_like(f) for f in features])

        _, passes = seconds(network_passes, device)
        rows.append((problem.size, step / iterations, max(0.0, 1 - passes / step)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512, help="content views' side")
    parser.add_argument("--image-size", type=int, default=None, help="default: the GPU profile's")
    parser.add_argument("--iterations", type=int, default=None, help="per scale; default: the GPU profile's")
    parser.add_argument("--timing-iterations", type=int, default=5, help="iterations timed per scale")
    args = parser.parse_args()
    device = resolve_device(args.device)
    changes = {name: value for name, value in (("image_size", args.image_size), ("iterations", args.iterations))
               if value is not None}
    settings, network_name = replace(GPU_PROFILE, **changes), PROFILE_NETWORKS["gpu"]
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    with tempfile.TemporaryDirectory(prefix="rrps-bench-gpu-") as tmp:
        work = Path(tmp)
        content_folder = render_both(work, args.size, device)
        (work / "style").mkdir()
        for source in (STYLE, style_landmarks(STYLE)):
            shutil.copy(source, work / "style" / source.name)
        subprocess.run([sys.executable, "correspondences.py", "--content", str(work / "content"), "--style",
                        str(work / "style"), "--models", str(MESH.parent), "--only", MESH.stem],
                       cwd=ROOT, check=True, capture_output=True)
        content = load_content_views(content_folder, device)
        inputs = prepare_inputs(content, load_style(work / "style" / STYLE.name), device)
        network = load_feature_network(network_name, device)
        print(f"style transfer ({settings.image_size} px, {settings.scales} scales, {settings.iterations} "
              f"iterations each):\n  size   s/iteration   outside the network")
        for size, per_iteration, outside in time_scales(inputs, network, settings, args.timing_iterations, device):
            print(f"  {size:4d}   {per_iteration:11.3f}   {100 * outside:6.0f}%")
        result, took = seconds(lambda: stylize_views(inputs, network, settings, progress=False), device)
        print(f"image-space step, whole run: {took:.1f} s")
        cameras, P, image_size, _ = load_cameras(ContentFolder(content_folder).cameras, device)
        recon = ReconstructionSettings(device=str(device))
        reconstruction, took = seconds(lambda: reconstruct_mesh(load_mesh(MESH), cameras, P, image_size,
                                                                result.stylized, result.verts2d_warped,
                                                                content.visible, recon), device)
        print(f"reconstruction ({recon.iterations} refinement iterations): {took:.1f} s, "
              f"{len(reconstruction.mesh.verts)} vertices")


if __name__ == "__main__":
    main()
