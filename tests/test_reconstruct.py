"""Mesh reconstruction with a known answer: a deformed, recoloured grid is recovered from its views."""
import pytest
import torch

from utils.rendering.cameras import frame_mesh, make_cameras, project, world_to_pixel
from utils.errors import InputError
from utils.geometry.fill import edge_weights, harmonic_fill
from utils.io.mesh import Mesh, load_mesh
from utils.geometry.metrics import displacement_stats, flipped_face_share, reprojection_errors
from utils.geometry.io import save_reconstruction
from utils.geometry.reconstruct import (ReconstructionSettings, initial_colors, reconstruct_mesh, refine,
                                       triangulated_verts)
from tests.synthetic import deform_and_recolor, observe

IMAGE_SIZE = 96
AZIMUTHS = [-15.0, 15.0]


def bumpy_grid(cells=34):
    """A relief-like square grid (about 2 * cells^2 faces) with a bump in the middle, facing +z."""
    line = torch.linspace(-1, 1, cells + 1)
    y, x = torch.meshgrid(line, line, indexing="ij")
    z = 0.25 * torch.exp(-2 * (x ** 2 + y ** 2)) + 0.04 * torch.sin(3 * x) * torch.cos(2 * y)
    verts = torch.stack([x, -y, z], -1).reshape(-1, 3)
    index = torch.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    top_left, top_right = index[:-1, :-1], index[:-1, 1:]
    bottom_left, bottom_right = index[1:, :-1], index[1:, 1:]
    faces = torch.cat([torch.stack([top_left, bottom_left, top_right], -1).reshape(-1, 3),
                       torch.stack([top_right, bottom_left, bottom_right], -1).reshape(-1, 3)])
    return Mesh(verts=verts, faces=faces)


@pytest.fixture(scope="module")
def scene():
    """(input mesh, deformed target, cameras, P, stylized views, warped projections, visibility)."""
    mesh = bumpy_grid()
    target = deform_and_recolor(mesh, amplitude=0.02)
    at, distance = frame_mesh(mesh.verts, 30.0)
    cameras = make_cameras(AZIMUTHS, [5.0] * len(AZIMUTHS), distance, 30.0, at)
    stylized, warped, visible = observe(target, cameras, IMAGE_SIZE)
    return mesh, target, cameras, world_to_pixel(cameras, IMAGE_SIZE), stylized, warped, visible


def _position_error(verts, target):
    """(V,) distance to the target's vertices relative to its bounding-box diagonal."""
    return (verts - target.verts).norm(dim=1) / target.bbox_diagonal()


def test_reconstruction_recovers_the_deformed_mesh_and_its_colours(scene, tmp_path):
    mesh, target, cameras, P, stylized, warped, visible = scene
    settings = ReconstructionSettings(iterations=6, checkpoint_every=3, weight_normal=1e-3)
    reconstruction = reconstruct_mesh(mesh, cameras, P, IMAGE_SIZE, stylized, warped, visible, settings)
    result, metrics = reconstruction.mesh, reconstruction.metrics
    assert torch.equal(result.faces, mesh.faces)
    assert float(_position_error(result.verts, target).mean()) <= 0.005
    assert min(metrics["psnr_db"]) >= 30.0
    assert max(metrics["reprojection_px_mean"]) < 0.1
    assert metrics["flipped_face_share"] == 0.0
    assert [iteration for iteration, _ in reconstruction.checkpoints] == [0, 3, 6]  # every 3rd and the last
    assert reconstruction.checkpoints[0][1].shape == (len(AZIMUTHS), 3, IMAGE_SIZE, IMAGE_SIZE)
    assert len(reconstruction.history["total"]) == 7
    assert not any(tmp_path.iterdir())  # the files are the io side's to write
    save_reconstruction(tmp_path, reconstruction)
    for name in ("recon_0000_0.png", "recon_0003_1.png", "recon_0006_0.png", "recon_loss.png"):
        assert (tmp_path / "intermediate" / name).is_file()
    saved = load_mesh(tmp_path / "mesh.obj")
    assert torch.allclose(saved.verts, result.verts, atol=1e-5)
    assert (tmp_path / "metrics.json").is_file()


def test_vertices_seen_once_land_on_their_warped_projection(scene):
    mesh, target, _, P, _, warped, visible = scene
    band = (mesh.verts[:, 0] > -0.4) & (mesh.verts[:, 0] < 0.0)
    visible = visible.clone()
    visible[band, 1] = False  # seen by view 0 only
    weight_matrix = edge_weights(mesh.faces, mesh.verts, "cotangent")
    verts, triangulated, single_view = triangulated_verts(mesh.verts, P, warped, visible, weight_matrix)
    assert bool(single_view[band].all()) and not bool(triangulated[band].any())
    pixels, _ = project(verts, P)
    assert float((pixels[band, 0] - warped[band, 0]).norm(dim=-1).max()) < 1e-2
    filled_only = mesh.verts + harmonic_fill(target.verts - mesh.verts, ~band, weight_matrix)
    error = _position_error(verts, target)[band].mean()
    assert float(error) < 0.8 * float(_position_error(filled_only, target)[band].mean())
    assert float(error) < 0.005


def test_colours_come_from_the_views_and_fill_unseen_vertices(scene):
    mesh, target, cameras, _, stylized, warped, visible = scene
    visible = visible.clone()
    visible[0] = False  # a corner vertex no view sees
    colors = initial_colors(target.verts, mesh.faces, cameras, stylized, warped, visible, edge_weights(mesh.faces))
    assert float((colors - target.colors).abs()[1:].mean()) < 0.01
    neighbours = mesh.faces[(mesh.faces == 0).any(1)].unique()
    assert float((colors[0] - target.colors[neighbours].mean(0)).abs().max()) < 0.05


def test_refinement_reduces_the_image_error_from_a_perturbed_start(scene):
    mesh, target, cameras, P, stylized, warped, visible = scene
    noisy = (target.colors + 0.15 * torch.randn(target.colors.shape, generator=torch.Generator().manual_seed(0)))
    settings = ReconstructionSettings(iterations=10, render_size=64, lr_colors=2e-2, checkpoint_every=0)
    _, colors, history, checkpoints = refine(target.verts, noisy.clamp(0, 1), mesh.faces, cameras, P, stylized,
                                             warped, visible, settings)
    assert checkpoints == []  # checkpoint_every=0
    assert history["image"][-1] < 0.6 * history["image"][0]
    assert float((colors - target.colors).abs().mean()) < float((noisy.clamp(0, 1) - target.colors).abs().mean())


def test_mismatched_inputs_are_reported_as_input_errors(scene):
    mesh, _, cameras, P, stylized, warped, visible = scene
    with pytest.raises(InputError, match="verts2d_warped"):
        reconstruct_mesh(mesh, cameras, P, IMAGE_SIZE, stylized, warped[:-1], visible)
    with pytest.raises(InputError, match="stylized"):
        reconstruct_mesh(mesh, cameras, P, IMAGE_SIZE, stylized[:1], warped, visible)


def test_geometry_metrics_on_known_cases():
    mesh = bumpy_grid(4)
    mirrored = mesh.verts * torch.tensor([-1.0, 1.0, 1.0])  # a reflection turns every face of a relief over
    assert flipped_face_share(mesh.verts, mesh.verts, mesh.faces) == 0.0
    assert flipped_face_share(mesh.verts, mirrored, mesh.faces) == 1.0
    diagonal = mesh.bbox_diagonal()
    shifted = displacement_stats(mesh.verts, mesh.verts + torch.tensor([0.1, 0.0, 0.0]))
    assert shifted["mean"] == pytest.approx(0.1 / diagonal) and shifted["max"] == pytest.approx(0.1 / diagonal)
    cameras = make_cameras([0.0, 20.0], [0.0, 0.0], 4.0, 30.0, torch.zeros(3))
    P = world_to_pixel(cameras, 64)
    pixels, _ = project(mesh.verts, P)
    visible = torch.ones(len(mesh.verts), 2, dtype=torch.bool)
    errors = reprojection_errors(mesh.verts, P, pixels + torch.tensor([3.0, 4.0]), visible)
    assert errors["mean"] == pytest.approx([5.0, 5.0], abs=1e-3)
    assert errors["max"] == pytest.approx([5.0, 5.0], abs=1e-3)
