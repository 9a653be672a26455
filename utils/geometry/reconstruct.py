"""Step 4b: the stylized mesh from the stylized views and the warped vertex projections.

1. Triangulation (the RRPS way): every vertex seen in two or more views is
   triangulated from its warped projections; the displacement of the others is
   filled in harmonically over the mesh.
2. Colours: each vertex samples the stylized views at its warped projection,
   weighted by how squarely each view sees it; unseen vertices get their
   neighbours' colours (the same harmonic fill).
3. Refinement (optional): per-vertex offsets and colours are optimised with Adam
   so that unlit renders from every view match the stylized images (L1 inside
   the mesh footprint) and the projections of the visible vertices stay at the
   warped positions, regularised by PyTorch3D's mesh losses on the displacement
   field (Laplacian, edge) and on the surface (normal consistency).
The topology of the input mesh is kept: same vertices, same faces.
"""
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from pytorch3d.loss import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from pytorch3d.renderer import CamerasBase, TexturesVertex
from pytorch3d.structures import Meshes
from tqdm import tqdm

from utils.rendering.cameras import project
from utils.device import resolve_device
from utils.errors import InputError
from utils.io.images import pixel_to_grid
from utils.geometry.fill import edge_weights, harmonic_fill
from utils.io.mesh import Mesh
from utils.geometry.metrics import footprint_interior, reconstruction_metrics
from utils.rendering.render import rasterize_views, render_views
from utils.geometry.triangulate import backproject, triangulate

if TYPE_CHECKING:
    import scipy.sparse


@dataclass
class ReconstructionSettings:
    """Parameters of the reconstruction; the defaults fit a ~100k-face mesh, 2 views, on two CPU cores.

    refine: run the differentiable-rendering refinement (False: triangulation + colours only, as RRPS).
    iterations: Adam steps; render_size: refinement resolution in pixels (the stylized views are resized
    to it; None: their own size: on CPU a 512-px frame of a 100k-face mesh costs barely more than 256 px);
    lr_offsets: step in units of the bounding-box diagonal; lr_colors: step in [0, 1].
    weight_*: loss weights (image L1, squared reprojection in pixels, Laplacian and edge terms of the
    offsets, normal consistency of the surface; 0 skips a term: the normal term is off by default because
    PyTorch3D's version costs about as much as a render per iteration on a 100k-face mesh on CPU).
    fill_weights: Laplacian for the harmonic fill ("cotangent" or "uniform").
    checkpoint_every: keep the renders every N iterations (0: never).
    device: "auto", "cpu", "cuda"; backend: rasterizer (``utils.rendering.raster.make_rasterizer``).
    """

    refine: bool = True
    iterations: int = 20
    render_size: Optional[int] = None
    lr_offsets: float = 1e-4
    lr_colors: float = 2e-3
    weight_image: float = 1.0
    weight_reprojection: float = 0.1
    weight_laplacian: float = 1.0
    weight_edge: float = 10.0
    weight_normal: float = 0.0
    fill_weights: str = "cotangent"
    checkpoint_every: int = 10
    device: str = "auto"
    backend: str = "auto"


@dataclass
class Reconstruction:
    """What ``reconstruct_mesh`` returns: mesh: the input's faces with new vertices and colours; metrics: JSON-ready
    figures; history: {loss name: [float per refinement iteration]} ({} without refinement); checkpoints:
    [(iteration, (K, 3, R, R) renders on the CPU in [0, 1])] every ``checkpoint_every`` iterations and the last.
    ``utils.geometry.io.save_reconstruction`` writes them."""

    mesh: Mesh
    metrics: dict
    history: Dict[str, List[float]] = field(default_factory=dict)
    checkpoints: List[Tuple[int, torch.Tensor]] = field(default_factory=list)


def reconstruct_mesh(mesh: Mesh, cameras: CamerasBase, P: torch.Tensor, image_size: int, stylized: torch.Tensor,
                     verts2d_warped: torch.Tensor | np.ndarray, visible: torch.Tensor | np.ndarray,
                     settings: Optional[ReconstructionSettings] = None) -> Reconstruction:
    """The stylized mesh: triangulation, colour initialisation and (optionally) refinement.

    mesh: input ``Mesh`` (V vertices); cameras: K PyTorch3D cameras; P: (K, 3, 4) world-to-pixel;
    image_size: S of the stylized views; stylized: (K, 3, S, S) in [0, 1]; verts2d_warped: (V, K, 2)
    pixel (x, y); visible: (V, K) bool (tensors or numpy arrays, as loaded from the .npy files).
    Returns a ``Reconstruction``: the mesh, its metrics, the refinement's loss history and checkpoint renders.
    """
    settings = settings or ReconstructionSettings()
    device = resolve_device(settings.device)
    verts2d_warped, visible = torch.as_tensor(verts2d_warped), torch.as_tensor(visible)
    _check_inputs(mesh, P, image_size, stylized, verts2d_warped, visible)
    cameras, P, stylized = cameras.to(device), P.to(device), stylized.to(device)
    verts_in, faces = mesh.verts.to(device), mesh.faces.to(device)
    warped, visible = verts2d_warped.to(device).float(), visible.to(device).bool()
    visible = visible & torch.isfinite(warped).all(-1)

    start = time.perf_counter()
    weight_matrix = edge_weights(mesh.faces, mesh.verts, settings.fill_weights)
    verts, triangulated, single_view = triangulated_verts(verts_in, P, warped, visible, weight_matrix)
    colors = initial_colors(verts, faces, cameras, stylized, warped, visible, weight_matrix, settings.backend)
    timing = {"triangulation_and_colours_s": time.perf_counter() - start}
    history, checkpoints = {}, []
    if settings.refine and settings.iterations > 0:
        start = time.perf_counter()
        verts, colors, history, checkpoints = refine(verts, colors, faces, cameras, P, stylized, warped, visible,
                                                     settings)
        timing["refinement_s_per_iteration"] = (time.perf_counter() - start) / settings.iterations
    result = Mesh(verts=verts.detach().cpu(), faces=mesh.faces, colors=colors.detach().cpu())
    with torch.no_grad():
        images, zbuf = render_views(_meshes(verts, faces, colors), cameras, image_size, settings.backend)
    metrics = reconstruction_metrics(mesh, result, P.cpu(), verts2d_warped, visible.cpu(), images.cpu(),
                                     stylized.cpu(), footprint_interior(zbuf).cpu())
    metrics.update(timing)
    metrics.update({"triangulated_share": float(triangulated.double().mean()),
                    "single_view_share": float(single_view.double().mean()), "settings": asdict(settings),
                    "final_loss": {name: values[-1] for name, values in history.items()}})
    return Reconstruction(result, metrics, history, checkpoints)


def triangulated_verts(verts_in: torch.Tensor, P: torch.Tensor, warped: torch.Tensor, visible: torch.Tensor,
                       weight_matrix: "scipy.sparse.spmatrix") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """New vertex positions from the warped projections, the input's topology kept.

    Vertices seen in two or more views are triangulated (DLT); the displacement of the others is filled in
    harmonically; a vertex seen in exactly one view then slides along that view's ray onto its warped
    projection, keeping the filled depth, and the unseen vertices are filled again to follow it.
    verts_in: (V, 3); P: (K, 3, 4); warped: (V, K, 2) pixel (x, y); visible: (V, K) bool;
    weight_matrix: the mesh's edge weights (``utils.geometry.fill.edge_weights``).
    Returns (verts (V, 3), triangulated (V,) bool, single_view (V,) bool).
    """
    points, triangulated = triangulate(warped, P, visible)
    verts = verts_in + harmonic_fill(points - verts_in, triangulated, weight_matrix)
    single_view = ~triangulated & (visible.sum(1) == 1)
    if bool(single_view.any()):
        view = visible[single_view].to(torch.uint8).argmax(1)  # (N,) the one view that sees it
        _, depth = project(verts[single_view], P)  # (N, K)
        index = single_view.nonzero()[:, 0]
        verts[single_view] = backproject(warped[index, view], depth.gather(1, view[:, None])[:, 0], P[view])
        anchored = triangulated | single_view
        verts = verts_in + harmonic_fill(verts - verts_in, anchored, weight_matrix)
    return verts, triangulated, single_view


def initial_colors(verts: torch.Tensor, faces: torch.Tensor, cameras: CamerasBase, stylized: torch.Tensor,
                   warped: torch.Tensor, visible: torch.Tensor, weight_matrix: "scipy.sparse.spmatrix",
                   backend: str = "auto") -> torch.Tensor:
    """(V, 3) vertex colours sampled from the stylized views at the warped projections.

    Each view that sees a vertex contributes with weight |cos(normal, direction to the camera)| (absolute,
    so a mesh with inward-facing normals works too). Samples are bilinear over the pixels the mesh covers
    in that view (normalised by the sampled coverage), so silhouette vertices take no background colour.
    Vertices no view sees get their neighbours' colours by harmonic fill (grey where none).
    verts: (V, 3); faces: (F, 3); stylized: (K, 3, S, S); warped: (V, K, 2); visible: (V, K) bool;
    weight_matrix: the mesh's edge weights (``utils.geometry.fill.edge_weights``).
    """
    surface = Meshes(verts=[verts], faces=[faces])
    with torch.no_grad():
        zbuf = rasterize_views(surface, cameras, stylized.shape[-1], backend).zbuf  # (K, S, S, 1)
    footprint = (zbuf >= 0).permute(0, 3, 1, 2).to(stylized.dtype)  # (K, 1, S, S)
    samples = sample_views(torch.cat([stylized * footprint, footprint], 1), warped)  # (V, K, 4)
    coverage = samples[..., 3:]
    normals = surface.verts_normals_packed()  # (V, 3)
    to_camera = F.normalize(cameras.get_camera_center()[None] - verts[:, None], dim=-1)  # (V, K, 3)
    weight = ((normals[:, None] * to_camera).sum(-1).abs() * visible * coverage[..., 0]).nan_to_num(0.0)
    total = weight.sum(1)
    colors = (weight[..., None] * samples[..., :3] / coverage.clamp(min=1e-6)).sum(1) / total.clamp(min=1e-12)[:, None]
    return harmonic_fill(colors, total > 1e-6, weight_matrix, default=0.5).clamp(0, 1)


def sample_views(images: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of K images at V pixel positions each.

    images: (K, C, S, S); pixels: (V, K, 2) pixel (x, y), origin at the top-left pixel centre.
    Returns (V, K, C); positions outside the image take the nearest border value.
    """
    size = images.shape[-1]
    grid = pixel_to_grid(pixels.nan_to_num(0.0), size, size).transpose(0, 1)[:, :, None]  # (K, V, 1, 2)
    samples = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border",
                            align_corners=False)  # (K, C, V, 1)
    return samples[..., 0].permute(2, 0, 1)


def refine(verts_start: torch.Tensor, colors_start: torch.Tensor, faces: torch.Tensor, cameras: CamerasBase,
           P: torch.Tensor, stylized: torch.Tensor, warped: torch.Tensor, visible: torch.Tensor,
           settings: ReconstructionSettings
           ) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]], list[tuple[int, torch.Tensor]]]:
    """Adam (cosine-decayed step) on per-vertex offsets and colours; see ``RefinementObjective`` for the loss.

    verts_start, colors_start: (V, 3); stylized: (K, 3, S, S); warped: (V, K, 2); visible: (V, K) bool.
    Returns (verts (V, 3), colors (V, 3), history {loss name: [float per iteration]},
    checkpoints [(iteration, renders (K, 3, R, R) on the CPU)] at iteration 0, every N and the last).
    """
    size = settings.render_size or stylized.shape[-1]
    targets = stylized if size == stylized.shape[-1] else F.interpolate(stylized, size=size, mode="area")
    objective = RefinementObjective(verts_start, faces, cameras, P, targets, warped, visible, settings)
    offsets = torch.zeros_like(verts_start, requires_grad=True)
    colors = colors_start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([{"params": [offsets], "lr": settings.lr_offsets},
                                  {"params": [colors], "lr": settings.lr_colors}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(settings.iterations, 1))
    history, checkpoints = {}, []
    progress = tqdm(range(settings.iterations + 1), desc="mesh refinement", leave=False)
    for iteration in progress:
        losses, renders = objective(offsets, colors)
        total = sum(losses.values())
        for name, value in {**losses, "total": total}.items():
            history.setdefault(name, []).append(float(value.detach()))
        progress.set_postfix(loss=f"{float(total.detach()):.4f}")
        if _is_checkpoint(iteration, settings):
            checkpoints.append((iteration, renders.detach().cpu()))
        if iteration == settings.iterations:
            break
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            colors.clamp_(0, 1)
    return objective.verts(offsets).detach(), colors.detach(), history, checkpoints


class RefinementObjective:
    """The refinement loss of per-vertex offsets (units of the bounding-box diagonal) and colours.

    Terms (each times its weight in the settings; a zero weight skips the term):
    image: L1 between unlit renders (K, 3, R, R) and the targets inside the rendered footprint;
    reprojection: mean squared pixel distance of the visible vertices' projections to their warped positions;
    laplacian, edge: PyTorch3D's mesh_laplacian_smoothing (uniform) and mesh_edge_loss on the offsets seen as
    a mesh, i.e. how unevenly neighbouring vertices move (zero at the start);
    normal: PyTorch3D's mesh_normal_consistency of the surface.
    The mesh topology (edges, Laplacian) is computed once and shared by every evaluation.
    """

    def __init__(self, verts_start: torch.Tensor, faces: torch.Tensor, cameras: CamerasBase, P: torch.Tensor,
                 targets: torch.Tensor, warped: torch.Tensor, visible: torch.Tensor,
                 settings: ReconstructionSettings) -> None:
        self.start, self.faces, self.cameras, self.P = verts_start, faces, cameras, P
        self.targets, self.warped, self.visible, self.settings = targets, warped, visible, settings
        self.scale = float((verts_start.amax(0) - verts_start.amin(0)).norm())
        self.topology = Meshes(verts=[verts_start], faces=[faces])
        self.topology.edges_packed()
        with warnings.catch_warnings():  # PyTorch3D builds it with a torch.sparse call that warns on every use
            warnings.simplefilter("ignore", UserWarning)
            self.topology.laplacian_packed()

    def verts(self, offsets: torch.Tensor) -> torch.Tensor:
        """(V, 3) vertex positions for the offsets (V, 3)."""
        return self.start + self.scale * offsets

    def __call__(self, offsets: torch.Tensor, colors: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Returns ({term: weighted scalar tensor}, renders (K, 3, R, R))."""
        settings, verts = self.settings, self.verts(offsets)
        renders, zbuf = render_views(_meshes(verts, self.faces, colors), self.cameras, self.targets.shape[-1],
                                     settings.backend)
        terms = {"image": lambda: self._image_l1(renders, zbuf),
                 "reprojection": lambda: self._reprojection(verts),
                 "laplacian": lambda: mesh_laplacian_smoothing(self._as_mesh(offsets), method="uniform"),
                 "edge": lambda: mesh_edge_loss(self._as_mesh(offsets)),
                 "normal": lambda: mesh_normal_consistency(self._as_mesh(verts))}
        weights = {name: getattr(settings, f"weight_{name}") for name in terms}
        return {name: weights[name] * term() for name, term in terms.items() if weights[name] > 0}, renders

    def _image_l1(self, renders, zbuf):
        """Mean absolute colour difference over the interior of the mesh's footprint (silhouette pixels left out)."""
        footprint = footprint_interior(zbuf)[:, None].to(renders.dtype)  # (K, 1, R, R)
        return ((renders - self.targets).abs() * footprint).sum() / (3 * footprint.sum()).clamp(min=1)

    def _reprojection(self, verts):
        """Mean squared pixel distance between projections and warped positions, visible vertices only."""
        pixels, _ = project(verts, self.P)
        return ((pixels - self.warped) ** 2).sum(-1)[self.visible].mean() if bool(self.visible.any()) \
            else verts.sum() * 0

    def _as_mesh(self, verts):
        """A ``Meshes`` with the given per-vertex positions (V, 3) and the cached topology."""
        return self.topology.update_padded(verts[None])


def _meshes(verts, faces, colors):
    """A PyTorch3D ``Meshes`` of batch 1 with per-vertex colours."""
    return Meshes(verts=[verts], faces=[faces], textures=TexturesVertex(verts_features=[colors]))


def _is_checkpoint(iteration, settings):
    """True at iteration 0, every ``checkpoint_every`` (when not 0) and at the last iteration."""
    every = settings.checkpoint_every
    return every > 0 and (iteration % every == 0 or iteration == settings.iterations)


def _check_inputs(mesh, P, image_size, stylized, verts2d_warped, visible):
    """Shapes must agree: V vertices and K views everywhere, square stylized views of the cameras' size."""
    num_verts, num_views = len(mesh.verts), len(P)
    if tuple(verts2d_warped.shape) != (num_verts, num_views, 2):
        raise InputError(f"verts2d_warped.npy has shape {tuple(verts2d_warped.shape)}, expected "
                         f"({num_verts}, {num_views}, 2) for this mesh and cameras; re-run run.py for this mesh")
    if tuple(visible.shape) != (num_verts, num_views):
        raise InputError(f"visible.npy has shape {tuple(visible.shape)}, expected ({num_verts}, {num_views}); "
                         "re-run rendering.py for this mesh")
    if tuple(stylized.shape) != (num_views, 3, image_size, image_size):
        raise InputError(f"expected {num_views} RGB stylized views of {image_size}x{image_size} px (the size in "
                         f"cameras.json), got shape {tuple(stylized.shape)}; re-run run.py, or resize them")
