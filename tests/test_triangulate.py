"""Triangulation reproduces exact projections; the epipolar distance measures what no 3D point explains; the
harmonic fill moves unseen vertices with their neighbours."""
import pytest
import torch
from pytorch3d.utils import ico_sphere

from utils.rendering.cameras import make_cameras, project, world_to_pixel
from utils.geometry.fill import edge_weights, harmonic_fill
from utils.geometry.epipolar import fundamental_matrix, sampson_distance
from utils.geometry.triangulate import consistent_projections, projections_at_depth, triangulate


def _views(count, image_size=256):
    """(K, 3, 4) pixel matrices of ``count`` cameras spread over 60 degrees of azimuth."""
    cameras = make_cameras(torch.linspace(-30, 30, count), torch.full((count,), 10.0), 3.0, 40, torch.zeros(3))
    return world_to_pixel(cameras, image_size)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_triangulation_reproduces_exact_projections(count):
    generator = torch.Generator().manual_seed(count)
    points = torch.rand(500, 3, generator=generator) - 0.5
    P = _views(count)
    pixels, _ = project(points.double(), P.double())
    mask = torch.ones(500, count, dtype=torch.bool)
    solved_points, solved = triangulate(pixels, P, mask)
    assert bool(solved.all())
    reprojected, _ = project(solved_points, P.double())
    assert float((reprojected - pixels).norm(dim=-1).max()) < 1e-3
    assert float((solved_points - points.double()).norm(dim=1).max()) < 1e-6


def test_triangulation_uses_only_masked_views_and_needs_two():
    points = torch.tensor([[0.1, -0.2, 0.05], [0.0, 0.3, -0.1], [0.2, 0.2, 0.2]], dtype=torch.float64)
    P = _views(3)
    pixels, _ = project(points, P.double())
    pixels[0, 2] += 40.0  # a wrong observation in a view the mask excludes
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    solved_points, solved = triangulate(pixels, P, mask)
    assert solved.tolist() == [True, False, True]
    assert torch.allclose(solved_points[0], points[0], atol=1e-6)
    assert bool(torch.isnan(solved_points[1]).all())


def test_sampson_distance_is_zero_for_projections_and_measures_an_offset_across_the_epipolar_line():
    points = torch.rand(200, 3, generator=torch.Generator().manual_seed(1)).double() - 0.5
    P = _views(2)
    pixels, _ = project(points, P.double())
    fundamental = fundamental_matrix(P[0], P[1])
    assert float(sampson_distance(fundamental, pixels[:, 0], pixels[:, 1]).max()) < 1e-6
    line = fundamental @ torch.cat([pixels[:, 0], torch.ones(200, 1, dtype=torch.float64)], 1).T  # lines in view 2
    across = (line[:2] / line[:2].norm(dim=0)).T  # (200, 2) unit normals of the epipolar lines
    distance = sampson_distance(fundamental, pixels[:, 0], pixels[:, 1] + 2.0 * across)
    # the nearest consistent pair moves both views: at most the 2 px offset, at least its share in a 4D distance
    assert float(distance.max()) <= 2.0 + 1e-6 and float(distance.min()) >= 1.0
    along = torch.stack([-across[:, 1], across[:, 0]], 1)
    assert float(sampson_distance(fundamental, pixels[:, 0], pixels[:, 1] + 2.0 * along).max()) < 0.01


def test_consistent_projections_are_explained_by_one_point_and_stay_near():
    points = torch.rand(68, 3, generator=torch.Generator().manual_seed(2)).double() - 0.5
    P = _views(3).double()
    pixels, _ = project(points, P)
    noisy = pixels.transpose(0, 1) + 0.8 * torch.randn(3, 68, 2, generator=torch.Generator().manual_seed(3)).double()
    consistent = consistent_projections(noisy, P)
    solved, _ = triangulate(consistent.transpose(0, 1), P, torch.ones(68, 3, dtype=torch.bool))
    assert float((project(solved, P)[0] - consistent.transpose(0, 1)).norm(dim=-1).max()) < 1e-6
    assert float((consistent - noisy).norm(dim=-1).mean()) < 1.0


def test_projections_at_depth_keep_the_shape_of_the_first_and_the_relief_of_the_second():
    """A flat card's landmarks (the exemplar turned) take the depth of the content's (a face with a nose): their
    triangulated points keep the card's x and y and the content's z, where consistent_projections would keep the
    card flat."""
    P = world_to_pixel(make_cameras(torch.tensor([-10.0, 10.0]), torch.zeros(2), 3.0, 15.0, torch.zeros(3)),
                       512).double()
    x, y = torch.meshgrid(torch.linspace(-0.4, 0.4, 7), torch.linspace(-0.4, 0.4, 7), indexing="xy")
    card = torch.stack([x.flatten(), y.flatten(), torch.zeros(49)], 1).double()
    face = card * 0.9 + torch.tensor([0.0, 0.0, 1.0]).double() * 0.25 * torch.exp(-(card ** 2).sum(1, keepdim=True) / 0.05)
    every = torch.ones(49, 2, dtype=torch.bool)
    on_card, in_face = (project(points, P)[0].transpose(0, 1) for points in (card, face))  # (K, L, 2)
    moved = projections_at_depth(on_card, in_face, P)
    solved, _ = triangulate(moved.transpose(0, 1), P, every)
    assert float((solved[:, :2] - card[:, :2]).abs().max()) < 1e-6
    assert float((solved[:, 2] - face[:, 2]).abs().max()) < 1e-6
    flat, _ = triangulate(consistent_projections(on_card, P).transpose(0, 1), P, every)
    assert float(flat[:, 2].abs().max()) < 1e-6 and float(face[:, 2].max()) > 0.2


@pytest.mark.parametrize("weights", ["uniform", "cotangent"])
def test_harmonic_fill_reproduces_a_constant_displacement(weights):
    sphere = ico_sphere(2)
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    known = verts[:, 2] > 0.3
    shift = torch.tensor([0.1, -0.2, 0.3])
    displacement = shift.expand_as(verts).clone()
    displacement[~known] = float("nan")
    filled = harmonic_fill(displacement, known, edge_weights(faces, verts, weights))
    assert float((filled - shift).abs().max()) < 1e-6


def test_unseen_vertex_moves_with_its_neighbours():
    sphere = ico_sphere(2)
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    known = torch.ones(len(verts), dtype=torch.bool)
    known[0] = False
    displacement = 0.1 * verts  # a smooth field: the unseen vertex should get its neighbours' mean
    filled = harmonic_fill(displacement, known, edge_weights(faces))
    neighbours = faces[(faces == 0).any(1)].unique()
    neighbours = neighbours[neighbours != 0]
    assert torch.allclose(filled[0], displacement[neighbours].mean(0), atol=1e-6)
    assert torch.equal(filled[1:], displacement[1:])


def test_component_without_known_vertices_gets_the_default():
    first, second = ico_sphere(1), ico_sphere(1)
    offset = len(first.verts_packed())
    faces = torch.cat([first.faces_packed(), second.faces_packed() + offset])
    values = torch.ones(2 * offset, 1)
    known = torch.zeros(2 * offset, dtype=torch.bool)
    known[:5] = True
    filled = harmonic_fill(values, known, edge_weights(faces))
    assert torch.equal(filled[:offset], torch.ones(offset, 1))
    assert torch.equal(filled[offset:], torch.zeros(offset, 1))
