"""Benchmark of step 4b (mesh reconstruction) on an RRPS mesh with a known answer; prints figures, asserts nothing.

The "stylized" views are unlit renders, from the two RRPS views (azimuth -10 and
+10 degrees), of a smoothly deformed and recoloured copy of the mesh, and the
"warped" projections are the deformed mesh's vertex projections. The
reconstruction starts from the undeformed, uncoloured mesh and should recover
the deformed one.

    python -m bench.bench_reconstruct [--mesh PATH] [--iterations N] [--render-size R] [--no-refine]
"""
import argparse
import os
import time
from pathlib import Path

import torch

from utils.rendering.cameras import world_to_pixel
from utils.rendering.content import RenderSettings, view_cameras
from utils.errors import cli_entry
from utils.io.mesh import load_mesh
from utils.geometry.io import save_reconstruction
from utils.geometry.reconstruct import ReconstructionSettings, reconstruct_mesh
from tests.synthetic import deform_and_recolor, observe

MESH = Path(__file__).resolve().parents[2] / "shared" / "data" / "rrps" / "meshes" / "00319.obj"
VIEWS = RenderSettings()  # RRPS's two views, framed as rendering.py frames them
IMAGE_SIZE = 512
AMPLITUDE = 0.01  # largest displacement per axis, relative to the bounding-box diagonal


def parse_args():
    defaults = ReconstructionSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", default=str(MESH))
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--render-size", type=int, default=defaults.render_size,
                        help="refinement resolution (default: the views' own size)")
    parser.add_argument("--no-refine", action="store_true")
    parser.add_argument("--out", default=None,
                        help="folder for the result: mesh.obj, metrics.json, intermediate/ renders (default: none)")
    return parser.parse_args()


@cli_entry
def main():
    args = parse_args()
    torch.set_num_threads(2)
    mesh = load_mesh(args.mesh)
    mesh.colors = None  # the reconstruction must find the colours from the views alone
    target = deform_and_recolor(mesh, AMPLITUDE)
    cameras, _, _ = view_cameras(mesh, VIEWS)
    start = time.perf_counter()
    stylized, warped, visible = observe(target, cameras, IMAGE_SIZE)
    print(f"mesh {args.mesh}: {len(mesh.verts)} vertices, {len(mesh.faces)} faces; "
          f"{len(VIEWS.azimuths)} views at {IMAGE_SIZE} px; inputs made in {time.perf_counter() - start:.1f} s")
    settings = ReconstructionSettings(refine=not args.no_refine, iterations=args.iterations,
                                      render_size=args.render_size, checkpoint_every=0 if args.out is None else 10)
    start, cpu_start = time.perf_counter(), time.process_time()
    reconstruction = reconstruct_mesh(mesh, cameras, world_to_pixel(cameras, IMAGE_SIZE), IMAGE_SIZE, stylized,
                                      warped, visible, settings)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if args.out is not None:
        save_reconstruction(args.out, reconstruction)
    result, metrics = reconstruction.mesh, reconstruction.metrics
    error = (result.verts - target.verts).norm(dim=1) / target.bbox_diagonal()
    seen = visible.any(1)
    print(f"settings: refine={settings.refine} iterations={settings.iterations} render_size={settings.render_size}")
    print(f"machine load (1-min average) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"CPU time of this process {cpu:.1f} s")
    print(f"time: total {total:.1f} s, triangulation + colours {metrics['triangulation_and_colours_s']:.2f} s, "
          f"refinement {metrics.get('refinement_s_per_iteration', 0.0):.2f} s/iteration")
    print(f"vertices seen by >= 2 views (triangulated): {metrics['triangulated_share']:.3f}; "
          f"seen by none: {1 - float(seen.double().mean()):.3f}")
    print(f"position error / bbox diagonal: mean {float(error.mean()):.5f}, max {float(error.max()):.5f}; "
          f"seen vertices mean {float(error[seen].mean()):.5f}; true displacement mean "
          f"{float(((target.verts - mesh.verts).norm(dim=1) / target.bbox_diagonal()).mean()):.5f}")
    print(f"colour error (seen vertices): mean abs {float((result.colors - target.colors)[seen].abs().mean()):.4f}")
    for name in ("reprojection_px_mean", "reprojection_px_max", "psnr_db", "ssim"):
        print(f"{name}: " + ", ".join(f"{value:.4f}" for value in metrics[name]))
    print(f"flipped faces: {metrics['flipped_face_share']:.5f}; displacement / bbox diagonal: "
          f"mean {metrics['displacement_rel_bbox']['mean']:.5f}, max {metrics['displacement_rel_bbox']['max']:.5f}")


if __name__ == "__main__":
    main()
