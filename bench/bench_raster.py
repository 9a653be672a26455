"""Speed of FastMeshRasterizer against PyTorch3D's MeshRasterizer on CPU; prints tables, asserts nothing.

On an RRPS portrait mesh (~100k faces) seen from the two RRPS views:
  1. seconds per call, forward and forward+backward, at 256/512/1024 px for one and two views, for
     both rasterizers, and the ratio. PyTorch3D's naive CPU rasterizer takes about a minute per
     512 px frame, so it is timed once per setting where that stays affordable; the other entries
     are scaled from the nearest measured one by pixels x views and marked "est.".
  2. the fast rasterizer against resolution.
  3. the fast rasterizer against face count (quadric decimation and midpoint subdivision, pymeshlab;
     making the 1M-face mesh takes minutes).
Wall-clock and process-CPU seconds (all threads), median of several calls; the load average is printed
because the machine may be shared with other work.

    python -m bench.bench_raster [--mesh PATH] [--quick] [--threads N]
"""
import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
from pytorch3d.structures import Meshes

from utils.rendering.content import RenderSettings, view_cameras
from utils.errors import cli_entry
from utils.io.mesh import load_mesh
from utils.rendering.raster import FastMeshRasterizer

MESH = Path(__file__).resolve().parents[2] / "shared" / "data" / "rrps" / "meshes" / "00319.obj"
VIEWS = RenderSettings()  # RRPS's two views, framed as rendering.py frames them
SIZES = [256, 512, 1024]
VIEW_COUNTS = [1, 2]
PYTORCH3D_MEASURED = {(256, 1, "forward"), (512, 1, "forward"), (256, 1, "forward+backward")}
FACE_COUNTS = [10_000, 25_000, 50_000, None, 400_000, 1_000_000]  # None: the mesh as loaded
SCALING_SIZES = [128, 256, 512, 1024, 2048]
REPEATS = 5


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", default=str(MESH))
    parser.add_argument("--quick", action="store_true",
                        help="256 and 512 px only, PyTorch3D timed at 256 px once, fewer face counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def meshes_for_views(verts, faces, views):
    """A batch of ``views`` copies of the mesh whose vertices are a fresh leaf needing gradients.

    verts: (V, 3); faces: (F, 3). Returns Meshes of batch size ``views``.
    """
    leaf = verts.expand(views, -1, -1).clone().requires_grad_(True)
    return Meshes(verts=leaf, faces=faces.expand(views, -1, -1))


def rasterize_once(rasterizer_class, verts, faces, cameras, size, backward):
    """One forward pass, and optionally a backward pass to the vertices from a loss on bary_coords and zbuf.

    The loss touches the rasterizer's differentiable outputs only, so the time is the rasterizer's
    (attribute interpolation and shading come on top in a real renderer, the same for both).
    """
    meshes = meshes_for_views(verts, faces, len(cameras))
    with torch.set_grad_enabled(backward):
        fragments = rasterizer_class(cameras, RasterizationSettings(image_size=size))(meshes)
        if backward:
            ((fragments.bary_coords ** 2).sum() + fragments.zbuf.sum()).backward()
    return fragments


def seconds_per_call(repeats, *args, warm_up=True):
    """Median (wall-clock, process CPU) seconds of ``rasterize_once(*args)`` over ``repeats`` calls.

    CPU seconds add up all threads; on a shared machine they move less with other people's load.
    """
    if warm_up:
        rasterize_once(*args)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        rasterize_once(*args)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def pytorch3d_seconds(measured, size, views, mode):
    """PyTorch3D's times from ``measured`` {(size, views, mode): (wall, cpu)}, or scaled by pixels x views
    from the nearest measured entry (same mode if any). Returns ((wall, cpu), is_estimate)."""
    if (size, views, mode) in measured:
        return measured[(size, views, mode)], False
    same_mode = [key for key in measured if key[2] == mode] or list(measured)
    base = min(same_mode, key=lambda key: (abs(key[0] - size), abs(key[1] - views)))
    scale = (size / base[0]) ** 2 * views / base[1]
    return tuple(seconds * scale for seconds in measured[base]), True


def first_views(cameras, views):
    """The first ``views`` cameras of a batch."""
    return cameras[list(range(views))]


def comparison_table(verts, faces, cameras, sizes, pytorch3d_settings):
    """Print fast vs PyTorch3D seconds per call for every size, view count and mode.

    pytorch3d_settings: the (size, views, mode) entries where PyTorch3D is timed (once each).
    """
    measured = {}
    for size, views, mode in sorted(pytorch3d_settings):
        measured[(size, views, mode)] = seconds_per_call(1, MeshRasterizer, verts, faces, first_views(cameras, views),
                                                         size, mode == "forward+backward", warm_up=False)
    print("\nseconds per call (wall-clock | process CPU); est. = PyTorch3D scaled from a measured entry")
    print(f"{'size':>5} {'views':>5} {'mode':>17} {'fast wall':>10} {'fast cpu':>9} {'p3d wall':>14} {'p3d cpu':>9}"
          f" {'ratio wall':>11} {'ratio cpu':>10}")
    for size in sizes:
        for views in VIEW_COUNTS:
            for mode in ("forward", "forward+backward"):
                fast = seconds_per_call(REPEATS, FastMeshRasterizer, verts, faces, first_views(cameras, views), size,
                                        mode == "forward+backward")
                reference, estimated = pytorch3d_seconds(measured, size, views, mode)
                flag = " est." if estimated else "     "
                print(f"{size:>5} {views:>5} {mode:>17} {fast[0]:>10.3f} {fast[1]:>9.3f} {reference[0]:>9.1f}{flag}"
                      f" {reference[1]:>9.1f} {reference[0] / fast[0]:>10.0f}x {reference[1] / fast[1]:>9.0f}x",
                      flush=True)


def resized_mesh(verts, faces, face_count):
    """The mesh decimated (quadric edge collapse) or midpoint-subdivided to about ``face_count`` faces."""
    import pymeshlab

    mesh_set = pymeshlab.MeshSet()
    mesh_set.add_mesh(pymeshlab.Mesh(verts.double().numpy(), faces.int().numpy()))
    while mesh_set.current_mesh().face_number() < face_count / 2:
        mesh_set.meshing_surface_subdivision_midpoint(iterations=1, threshold=pymeshlab.PercentageValue(0))
    if mesh_set.current_mesh().face_number() > face_count * 1.1:
        mesh_set.meshing_decimation_quadric_edge_collapse(targetfacenum=face_count, preservetopology=True)
    mesh = mesh_set.current_mesh()
    return (torch.from_numpy(mesh.vertex_matrix()).float(),
            torch.from_numpy(mesh.face_matrix()).long())


def face_count_table(verts, faces, cameras, face_counts, size=512):
    """Print the fast rasterizer's seconds per call against face count (one view, given size)."""
    print(f"\nfast rasterizer vs face count ({size} px, 1 view)")
    print(f"{'faces':>9} {'fwd wall':>9} {'fwd cpu':>8} {'fwd+bwd wall':>13} {'fwd+bwd cpu':>12}")
    for face_count in face_counts:
        v, f = (verts, faces) if face_count is None else resized_mesh(verts, faces, face_count)
        forward = seconds_per_call(3, FastMeshRasterizer, v, f, first_views(cameras, 1), size, False)
        both = seconds_per_call(3, FastMeshRasterizer, v, f, first_views(cameras, 1), size, True)
        print(f"{len(f):>9} {forward[0]:>9.3f} {forward[1]:>8.3f} {both[0]:>13.3f} {both[1]:>12.3f}", flush=True)


def resolution_table(verts, faces, cameras, sizes):
    """Print the fast rasterizer's seconds per call against image size (one view)."""
    print(f"\nfast rasterizer vs resolution ({len(faces)} faces, 1 view)")
    print(f"{'size':>5} {'fwd wall':>9} {'fwd cpu':>8} {'fwd+bwd wall':>13} {'fwd+bwd cpu':>12} {'covered px':>11}")
    for size in sizes:
        forward = seconds_per_call(3, FastMeshRasterizer, verts, faces, first_views(cameras, 1), size, False)
        both = seconds_per_call(3, FastMeshRasterizer, verts, faces, first_views(cameras, 1), size, True)
        covered = int((rasterize_once(FastMeshRasterizer, verts, faces, first_views(cameras, 1), size, False)
                       .pix_to_face >= 0).sum())
        print(f"{size:>5} {forward[0]:>9.3f} {forward[1]:>8.3f} {both[0]:>13.3f} {both[1]:>12.3f} {covered:>11}",
              flush=True)


@cli_entry
def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.mesh).is_file():
        print(f"skipped: mesh {args.mesh} not found (the RRPS data is expected in ../shared/data/rrps)")
        return
    mesh = load_mesh(args.mesh)
    cameras, _, _ = view_cameras(mesh, VIEWS)
    print(f"mesh {args.mesh}: {len(mesh.verts)} vertices, {len(mesh.faces)} faces; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    sizes = SIZES[:2] if args.quick else SIZES
    pytorch3d_settings = {(256, 1, "forward")} if args.quick else PYTORCH3D_MEASURED
    comparison_table(mesh.verts, mesh.faces, cameras, sizes, pytorch3d_settings)
    resolution_table(mesh.verts, mesh.faces, cameras, SCALING_SIZES[:3] if args.quick else SCALING_SIZES)
    face_count_table(mesh.verts, mesh.faces, cameras, FACE_COUNTS[:4] if args.quick else FACE_COUNTS)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
