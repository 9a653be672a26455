"""The 3D colour pass (step 4c): renders of fixed geometry, its gradient, and a closed head styled all round."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F
import trimesh

from tests.synthetic import tiny_network
from utils.io.mesh import Mesh, to_pytorch3d
from utils.rendering.cameras import frame_mesh, make_cameras
from utils.rendering.content import RenderSettings, observe_mesh
from utils.rendering.render import render_views
from utils.style.all_round import (AllRoundSettings, AllRoundStyle, FixedViews, hair_likeness, starting_colors,
                                   style_all_round, turned_away, vertex_parts, view_cameras_around)
from utils.style.palette import matched_colors
from utils.style.regions import REGIONS

SIZE = 64
FOV = 20.0
CONTENT_AZIMUTHS = (-10.0, 10.0)


CONTENT = RenderSettings(image_size=SIZE, azimuths=list(CONTENT_AZIMUTHS))


def ball(subdivisions=3):
    """A closed head stand-in: an icosphere (642 vertices) with a smooth blue-green input colouring."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    verts = torch.tensor(sphere.vertices, dtype=torch.float32)
    faces = torch.tensor(sphere.faces, dtype=torch.int64)
    x, y, _ = verts.unbind(1)
    colors = torch.stack([0.15 + 0.1 * x, 0.45 + 0.15 * y, 0.7 - 0.1 * x], 1).clamp(0, 1)
    return Mesh(verts=verts, faces=faces, colors=colors)


def exemplar(size=48):
    """An orange-and-red striped painting (3, size, size), all of it the head."""
    stripes = (torch.arange(size) // 4 % 2).float()[None, :, None].expand(1, size, size)
    image = torch.cat([0.9 - 0.2 * stripes, 0.45 - 0.3 * stripes, 0.1 + 0 * stripes])
    return image, torch.ones(size, size)


def views_json(mesh):
    at, distance = frame_mesh(mesh.verts, FOV, margin=1.3)
    return [dict(azimuth=a, elevation=0.0, distance=distance, fov=FOV, at=at.tolist()) for a in CONTENT_AZIMUTHS]


def content_cameras(views):
    return make_cameras(CONTENT_AZIMUTHS, [0.0] * len(views), views[0]["distance"], FOV, views[0]["at"])


def front_stylized(mesh, image):
    """What steps 4a-4b leave: the front (z > 0.35) in the exemplar's colours, the sides and back in the input's."""
    mean = image.mean((1, 2))
    front = (mesh.verts[:, 2] > 0.35)[:, None]
    return dataclasses.replace(mesh, colors=torch.where(front, mean.expand_as(mesh.colors), mesh.colors))


def taken(mesh_in, mesh_out, views, angle, image):
    """1 - (distance of the mean head colour to the exemplar's) / (the input's), seen from ``angle`` degrees."""
    cameras = view_cameras_around(views, [angle], 0.0)
    target = image.mean((1, 2))
    distances = []
    for mesh in (mesh_in, mesh_out):
        with torch.no_grad():
            render, zbuf = render_views(to_pytorch3d(mesh), cameras, SIZE)
        distances.append(float((render[0][:, zbuf[0] >= 0].mean(1) - target).norm()))
    return 1 - distances[1] / distances[0]


@pytest.fixture(scope="module")
def closed_head():
    mesh_in = ball()
    image, mask = exemplar()
    views = views_json(mesh_in)
    cameras = content_cameras(views)
    mesh_out = front_stylized(mesh_in, image)
    stylized, _, visible = observe_mesh(mesh_out, cameras, CONTENT)
    return mesh_in, mesh_out, views, cameras, stylized, visible, image, mask


def quick_settings(**changes):
    quick = dict(image_size=SIZE, iterations=30, views_per_iteration=2, learning_rate=0.05, result_samples=256,
                 style_samples=256)
    return dataclasses.replace(AllRoundSettings(), **{**quick, **changes})


def test_render_of_fixed_views_matches_the_renderer(closed_head):
    mesh_in, _, views, cameras, *_ = closed_head
    fixed = FixedViews(mesh_in.verts, mesh_in.faces, cameras, SIZE)
    with torch.no_grad():
        reference, zbuf = render_views(to_pytorch3d(mesh_in), cameras, SIZE)
    assert torch.equal(fixed.mask, zbuf >= 0)
    assert torch.allclose(fixed.render(mesh_in.colors), reference, atol=1e-5)
    assert bool((fixed.facing > 0.95).all())  # a closed ball faces every camera
    # a ball is seen squarely in the middle of its footprint and at a grazing angle on its outline
    squareness = fixed.squareness[0]
    middle = squareness[zbuf[0] >= 0].max()
    inside = torch.nn.functional.max_pool2d((~fixed.mask[:1]).float()[None], 3, 1, 1)[0, 0] == 0
    outline = fixed.mask[0] & ~inside
    assert float(middle) > 0.95 and float(squareness[outline].mean()) < 0.5
    assert bool((squareness[~fixed.mask[0]] == 0).all())


def test_render_gradient_matches_finite_differences(closed_head):
    mesh_in, _, _, cameras, *_ = closed_head
    fixed = FixedViews(mesh_in.verts, mesh_in.faces, cameras, 16)
    colors = mesh_in.colors.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: fixed.render(c, [1]), (colors,), eps=1e-6, atol=1e-6)


@pytest.mark.slow
def test_pass_loss_gradient_matches_finite_differences(closed_head):
    """The whole loss (style views through the rasterizer and the network, and the anchor) against central
    differences at the colours of a few vertices seen in the views."""
    mesh_in, mesh_out, views, cameras, stylized, _, image, mask = closed_head
    settings = quick_settings(image_size=32, azimuths=[-60.0, 60.0])
    around = FixedViews(mesh_out.verts, mesh_out.faces, view_cameras_around(views, settings.azimuths, 0.0), 32)
    anchor = FixedViews(mesh_out.verts, mesh_out.faces, cameras, 32)
    # float64 throughout, so that central differences are exact enough; noise on the colours and the exemplar
    # keeps the evaluation off the kinks of |x| (the anchor's L1 is 0 where render and view agree) and of the
    # REMD's nearest-neighbour choice (a two-colour exemplar has exact ties)
    noise = torch.Generator().manual_seed(2)
    start = (mesh_out.colors.double() + 0.05 * torch.rand(mesh_out.colors.shape, generator=noise)).clamp(0, 1)
    image = (image.double() + 0.05 * torch.rand(image.shape, generator=noise)).clamp(0, 1)
    problem = AllRoundStyle(start, around, anchor, stylized.double(), image, mask, tiny_network().double(),
                            settings, (1.0, 1.0, 1.0))

    def loss(colors):
        problem.generator.manual_seed(0)  # the same sample positions at every evaluation
        return problem.losses(colors, [0, 1])["total"]

    colors = start.clone().requires_grad_(True)
    loss(colors).backward()
    seen = around.corners.unique()
    picked = seen[torch.randperm(len(seen), generator=torch.Generator().manual_seed(1))[:6]]
    eps = 1e-5
    for vertex in picked.tolist():
        for channel in range(3):
            step = torch.zeros_like(colors)
            step[vertex, channel] = eps
            with torch.no_grad():
                numeric = (loss(start + step) - loss(start - step)) / (2 * eps)
            analytic = colors.grad[vertex, channel]
            assert abs(float(numeric - analytic)) <= 1e-3 * abs(float(analytic)) + 1e-7, (vertex, channel)


@pytest.mark.slow
def test_a_closed_head_is_styled_on_its_sides_as_on_its_front(closed_head):
    mesh_in, mesh_out, views, cameras, stylized, visible, image, mask = closed_head
    before = {angle: taken(mesh_in, mesh_out, views, angle, image) for angle in (-60, 0, 60)}
    assert before[60] < before[0] - 0.3 and before[-60] < before[0] - 0.3  # the sides are not styled yet
    mesh, result = style_all_round(mesh_in, mesh_out, cameras, views, stylized, visible, image, mask,
                                   tiny_network(), quick_settings(), progress=False)
    after = {angle: taken(mesh_in, mesh, views, angle, image) for angle in (-60, 0, 60)}
    assert after[0] >= before[0] - 0.05  # the front keeps its style
    assert after[60] >= after[0] - 0.1 and after[-60] >= after[0] - 0.1
    # the long edges were split first (max_edge_px): the old vertices come first, unmoved, and more faces follow
    assert torch.equal(mesh.verts[:len(mesh_out.verts)], mesh_out.verts) and len(mesh.faces) > len(mesh_out.faces)
    assert len(result.azimuths) == len(AllRoundSettings().azimuths)  # a closed head is turned all round


def test_a_relief_drops_the_views_from_behind():
    mesh = ball()
    keep = mesh.verts[:, 2] > 0  # the front half: a relief with no back
    index = torch.full((len(mesh.verts),), -1, dtype=torch.int64)
    index[keep] = torch.arange(int(keep.sum()))
    faces = index[mesh.faces[keep[mesh.faces].all(1)]]
    relief = Mesh(verts=mesh.verts[keep], faces=faces, colors=mesh.colors[keep])
    views = views_json(relief)
    settings = quick_settings(iterations=2)
    image, mask = exemplar()
    cameras = content_cameras(views)
    stylized, _, visible = observe_mesh(relief, cameras, CONTENT)
    _, result = style_all_round(relief, relief, cameras, views, stylized, visible, image, mask, tiny_network(),
                                settings, progress=False)
    assert 0.0 in result.azimuths and 180.0 not in result.azimuths and 120.0 not in result.azimuths


def test_matched_colors_take_the_palette_and_keep_plain_areas_plain():
    generator = torch.Generator().manual_seed(0)
    source = torch.cat([torch.rand(150, 3, generator=generator) * 0.5 + 0.2, torch.full((50, 3), 0.4)])
    palette = torch.rand(1000, 3, generator=generator) * torch.tensor([0.2, 0.3, 0.1]) + torch.tensor([0.7, 0.4, 0.1])
    matched = matched_colors(source, palette)
    assert torch.allclose(matched.mean(0), palette.mean(0), atol=0.03)
    assert (matched >= palette.amin(0) - 1e-6).all() and (matched <= palette.amax(0) + 1e-6).all()
    assert torch.equal(matched[150:], matched[150:151].expand(50, 3))  # equal colours stay equal


def test_the_colours_the_views_see_squarely_are_held(closed_head):
    """hold_seen 1: where the content views see a vertex squarely (trust 1) the pass keeps its reconstructed colour
    and styles the rest; hold_seen 0 lets it change them too."""
    mesh_in, mesh_out, views, cameras, stylized, visible, image, mask = closed_head
    palette = image[:, mask.bool()].T
    _, trust = starting_colors(mesh_in, mesh_out, cameras, torch.as_tensor(visible), palette,
                               rings=quick_settings().confidence_rings)
    seen = trust >= 1
    assert bool(seen.any()) and bool((~seen).any())
    changes = {}
    for hold in (1.0, 0.0):
        _, result = style_all_round(mesh_in, mesh_out, cameras, views, stylized, visible, image, mask, tiny_network(),
                                    quick_settings(iterations=3, hold_seen=hold, max_edge_px=0),
                                    progress=False)
        changes[hold] = (result.colors - result.start).abs().amax(1)
    assert float(changes[1.0][seen].max()) == 0.0 and float(changes[1.0][~seen].max()) > 0.01
    assert float(changes[0.0][seen].max()) > 0.01


def test_turned_away_is_zero_in_front_and_one_behind(closed_head):
    mesh_in, _, _, cameras, *_ = closed_head
    back = turned_away(mesh_in.verts, cameras, back_from=120.0)
    z = mesh_in.verts[:, 2]  # the content cameras look at the ball's +z side
    assert bool((back[z > 0.01] == 0).all()) and bool((back[z < -0.6] == 1).all())
    assert 0 < float(back[(z < -0.2) & (z > -0.4)].mean()) < 1


def two_tone_painting():
    """A painting (3, 48, 48) whose hair (top half; the mask (48, 48) returned with it) is blue, its face orange."""
    image = torch.zeros(3, 48, 48)
    image[:, :24] = torch.tensor([0.1, 0.2, 0.9])[:, None, None]
    image[:, 24:] = torch.tensor([0.9, 0.5, 0.1])[:, None, None]
    hair = torch.zeros(48, 48)
    hair[:24] = 1
    return image, hair


def test_the_back_starts_in_the_exemplars_hair_palette(closed_head):
    """A painting whose hair (top half) is blue and face (bottom half) orange: the unseen back of a closed head
    starts in the blue, its unseen sides in the whole head's colours; back_start 0 gives the old start."""
    mesh_in, mesh_out, views, cameras, stylized, visible, _, _ = closed_head
    image, hair = two_tone_painting()
    mask = torch.ones(48, 48)
    starts = {}
    for weight in (1.0, 0.0):
        _, result = style_all_round(mesh_in, mesh_out, cameras, views, stylized, visible, image, mask, tiny_network(),
                                    quick_settings(iterations=0, max_edge_px=0, back_start=weight, start_noise=0),
                                    progress=False, back_mask=hair)
        starts[weight] = result.start
    z = mesh_in.verts[:, 2]
    behind, side = z < -0.6, z.abs() < 0.05
    blue = torch.tensor([0.1, 0.2, 0.9])
    assert float((starts[1.0][behind] - blue).norm(dim=1).max()) < 0.05
    assert float((starts[0.0][behind].mean(0) - blue).norm()) > 0.3  # the head's palette mixes in the orange
    assert torch.allclose(starts[1.0][side], starts[0.0][side])


def test_ball_average_spreads_a_spike_only_within_its_radius():
    from utils.style.all_round import BallAverage

    grid = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij"), -1).reshape(-1, 2)
    verts = torch.cat([grid, torch.zeros(len(grid), 1)], 1)  # a flat 9 x 9 lattice, spacing 1
    average = BallAverage(verts, 1.5)
    assert torch.allclose(average(torch.full((81, 3), 0.3)), torch.full((81, 3), 0.3))  # plain stays plain
    spike = torch.zeros(81, 1)
    spike[40] = 9.0  # the middle vertex (4, 4)
    spread = average(spike)[:, 0]
    near = (verts - verts[40]).norm(dim=1) <= 1.5
    assert torch.allclose(spread[near], torch.tensor(1.0)) and bool((spread[~near] == 0).all())


def test_smoothed_confidence_loses_its_stripes_and_keeps_plain_values():
    """An acquired head's per-vertex confidence alternates from row to row of its grid; averaged over rings of
    neighbours the stripes fade, a plain value stays, and 0 rings is no change."""
    from tests.synthetic import face_relief
    from utils.style.all_round import smoothed

    faces = face_relief(12)[0].faces  # a 12 x 12 grid, vertices row by row
    rows = torch.arange(12).repeat_interleave(12)
    stripes = torch.where(rows % 2 == 0, 0.3, 0.8)  # (144,) one value per grid row
    assert torch.equal(smoothed(stripes, faces, 0), stripes)
    assert torch.allclose(smoothed(torch.full((144,), 0.6), faces, 4), torch.tensor(0.6))
    inner = (rows > 3) & (rows < 8)
    once, four = smoothed(stripes, faces, 1)[inner], smoothed(stripes, faces, 4)[inner]
    assert float(stripes[inner].max() - stripes[inner].min()) == pytest.approx(0.5)
    assert float(four.max() - four.min()) < 0.1 < float(once.max() - once.min())
    assert float(four.mean()) == pytest.approx(0.55, abs=0.05)


def test_refined_meshes_share_the_new_vertices_and_their_visibility():
    """The pass's split: both meshes get the same new vertices; the input's colours are interpolated, and a new vertex
    is visible in a view only where both ends of its edge are."""
    from utils.style.all_round import refined

    verts = torch.tensor([[0.0, 0, 0], [4, 0, 0], [0, 1, 0]])
    faces = torch.tensor([[0, 1, 2]])
    mesh_in = Mesh(verts=verts, faces=faces, colors=torch.tensor([[0.0, 0, 0], [1, 1, 1], [0, 0, 0]]))
    mesh_out = Mesh(verts=verts + 1, faces=faces, colors=torch.full((3, 3), 0.5))
    visible = torch.tensor([[True, True], [True, False], [True, True]])
    fine_in, fine_out, fine_visible = refined(mesh_in, mesh_out, visible, 2.5)
    assert torch.equal(fine_in.faces, fine_out.faces) and torch.equal(fine_in.verts, fine_out.verts)
    assert len(fine_out.verts) > 3 and torch.equal(fine_out.verts[:3], mesh_out.verts)
    assert torch.allclose(fine_out.colors, torch.full_like(fine_out.colors, 0.5))
    middle = (fine_out.verts - torch.tensor([3.0, 1, 1])).norm(dim=1).argmin()  # the midpoint of the long edge 0-1
    assert torch.allclose(fine_in.colors[middle], torch.full((3,), 0.5))
    assert fine_visible[middle].tolist() == [True, False] and fine_visible.shape == (len(fine_out.verts), 2)


def test_luminance_ramp_keeps_a_gradient_on_the_palettes_own_colours():
    """A source whose red rises while its green falls (a gradient across a plain back): matched channel by channel
    it takes colours the palette (dark green and light pink) does not have; by luminance it stays on the palette's
    colours, darkest to lightest, and equal sources stay equal."""
    from utils.style.palette import LUMA, luminance_ramp

    generator = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 200)[:, None]
    source = torch.cat([0.3 + 0.4 * t, 0.5 - 0.1 * t, torch.full_like(t, 0.4)], 1)
    source[150:] = source[150]
    noise = torch.rand(1000, 3, generator=generator) * 0.05
    green, pink = torch.tensor([[0.1, 0.3, 0.1]]), torch.tensor([[0.9, 0.6, 0.7]])
    palette = torch.cat([green.expand(500, 3), pink.expand(500, 3)]) + noise
    ramp, matched = luminance_ramp(source, palette), matched_colors(source, palette)
    off_palette = lambda colours: float(torch.cdist(colours, palette).amin(1).quantile(0.9))  # noqa: E731
    assert off_palette(matched) > 0.3 and off_palette(ramp) < 0.1  # (the ramp blends only where green meets pink)
    luma = ramp @ torch.tensor(LUMA)
    assert bool((luma[1:150] >= luma[:149] - 1e-6).all())  # source luminance rises along t: so does the result's
    assert torch.equal(ramp[150:], ramp[150:151].expand(50, 3))
    assert float((ramp[0] - green[0]).norm()) < 0.1


def test_a_contrast_limited_ramp_keeps_a_crowded_narrow_range_narrow():
    """A head whose face spans the greys and whose back (two thirds of the vertices) is one faint gradient: the plain
    ramp spreads the back over most of the palette (bands of black to white, as on an acquired head), the
    contrast-limited one keeps it to a short stretch, still rising with the source and equal where it is equal."""
    from utils.style.palette import LUMA, luminance_ramp

    face = torch.linspace(0.1, 0.9, 100)[:, None].expand(100, 3)
    back = torch.linspace(0.45, 0.5, 200)[:, None].expand(200, 3).clone()
    back[180:] = back[180]
    source = torch.cat([face, back])
    palette = torch.linspace(0, 1, 1000)[:, None].expand(1000, 3)
    spread = {}
    for limit in (0.0, 3.0):
        luma = luminance_ramp(source, palette, limit) @ torch.tensor(LUMA)
        assert bool((luma[1:100] >= luma[:99] - 1e-6).all()) and bool((luma[101:] >= luma[100:-1] - 1e-6).all())
        assert bool((luma[280:] == luma[280]).all())
        spread[limit] = float(luma[100:].max() - luma[100:].min())
    assert spread[0.0] > 0.5 and spread[3.0] < 0.25


def test_the_start_is_dithered_only_where_the_views_do_not_see_the_surface():
    """dithered: vertices the views see squarely (trust 1) keep their colour, the others take the grey grain times
    the asked std."""
    from utils.style.all_round import dithered

    start = torch.full((4000, 3), 0.5)
    trust = torch.cat([torch.ones(2000), torch.zeros(2000)])
    grain = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    noisy = dithered(start, trust, grain, 0.05)
    assert torch.equal(noisy[:2000], start[:2000])
    assert torch.allclose(noisy[2000:, 0] - 0.5, 0.05 * grain[2000:], atol=1e-6)
    assert torch.equal(noisy[:, 0], noisy[:, 1]) and torch.equal(noisy[:, 0], noisy[:, 2])
    assert torch.equal(dithered(start, trust, grain, 0.0), start)


def upright_sheet(step=0.02):
    """A flat vertical sheet (x, y in [-1, 1], z = 0) of (2 / step + 1)^2 vertices, in two triangles a square."""
    n = round(2 / step) + 1
    y, x = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    verts = torch.stack([x.flatten(), y.flatten(), torch.zeros(n * n)], 1)
    corner = (torch.arange(n - 1)[:, None] * n + torch.arange(n - 1)[None]).flatten()
    faces = torch.cat([torch.stack([corner, corner + 1, corner + n], 1),
                       torch.stack([corner + 1, corner + n + 1, corner + n], 1)])
    return verts, faces, n


def test_the_grain_runs_in_strokes_down_the_surface():
    """stroke_grain: per-vertex noise of unit std; with a stroke 0.4 long and 0.04 wide on an upright sheet, a vertex's
    grain follows the one 0.1 above it (correlation > 0.5) and not the one 0.1 beside it (< 0.15); seeded."""
    from utils.style.all_round import stroke_directions, stroke_grain

    verts, faces, n = upright_sheet()
    front = torch.tensor([0.0, 0.0, 1.0])
    plain = stroke_grain(verts, faces, front, 0.0, 0.0, 0.015, seed=0)
    assert torch.equal(plain, torch.randn(n * n, generator=torch.Generator().manual_seed(0)))
    grain = stroke_grain(verts, faces, front, 0.4, 0.04, 0.015, seed=0).view(n, n)  # rows: y
    assert abs(float(grain.std()) - 1) < 1e-4
    assert torch.equal(grain.flatten(), stroke_grain(verts, faces, front, 0.4, 0.04, 0.015, seed=0))
    inner = slice(15, n - 20)  # 0.3 from the edges, 0.1 (5 vertices) apart

    def correlation(a, b):
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    assert correlation(grain[inner, inner], grain[5:][inner, inner]) > 0.5
    assert abs(correlation(grain[inner, inner], grain[:, 5:][inner, inner])) < 0.15
    assert abs(correlation(plain.view(n, n)[inner, inner], plain.view(n, n)[5:][inner, inner])) < 0.15
    # on a sphere the strokes lie in the tangent planes and run down, except on the poles, where they run to the front
    normals = F.normalize(torch.randn(500, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    normals = torch.cat([normals, torch.tensor([[0.0, 1.0, 0.0]])])
    along = stroke_directions(normals, front)
    assert torch.allclose(along.norm(dim=1), torch.ones(501)) and float((along * normals).sum(1).abs().max()) < 1e-5
    assert bool((along[:-1][normals[:-1, 1].abs() < 0.9, 1] < 0).all()) and torch.allclose(along[-1], front)


def test_the_back_starts_in_strands_of_hair_without_the_fills_column():
    """hair_start: a back whose input is lighter down a vertical column (as an acquired head's fill is) starts with
    no column in its luminance once drawn in strands, keeps its darker lower half, and runs in the grain's vertical
    strands; strands 0 gives the plain luminance ramp, column and all."""
    from utils.style.all_round import hair_start, stroke_grain
    from utils.style.palette import LUMA, luminance_ramp

    verts, faces, n = upright_sheet()
    x, y = verts[:, 0], verts[:, 1]
    level = (0.3 + 0.4 * torch.exp(-(x / 0.15) ** 2) + 0.1 * y).clamp(0, 1)  # a pale column; lighter above
    source = level[:, None].expand(-1, 3)
    hair = torch.stack([torch.linspace(0, 1, 200), torch.linspace(0, 0.8, 200), torch.linspace(0, 0.5, 200)], 1)
    grain = stroke_grain(verts, faces, torch.tensor([0.0, 0.0, 1.0]), 0.4, 0.04, 0.015, seed=0)
    back = torch.ones(n * n)
    plain = hair_start(source, y, back, hair, 3.0)
    assert torch.allclose(plain, luminance_ramp(source, hair, 3.0))
    luma = lambda colors: (colors @ torch.tensor(LUMA)).view(n, n)  # noqa: E731 (rows: y)
    centre, edge = slice(n // 2 - 3, n // 2 + 4), slice(5, 15)
    assert float(luma(plain)[:, centre].mean() - luma(plain)[:, edge].mean()) > 0.2  # the ramp keeps the column
    stranded = luma(hair_start(source, y, back, hair, 3.0, grain, 0.5))
    assert abs(float(stranded[:, centre].mean() - stranded[:, edge].mean())) < 0.05
    assert float(stranded[: n // 2].mean()) < float(stranded[n // 2:].mean()) - 0.02  # darker below
    strands = stranded - stranded.mean(1, keepdim=True)  # each height's mean taken out
    inner = slice(15, n - 20)
    below = torch.stack([strands[inner, inner].flatten(), strands[5:][inner, inner].flatten()])
    assert float(torch.corrcoef(below)[0, 1]) > 0.4 and float(strands[inner, inner].std()) > 0.03


def test_vertex_parts_are_the_parts_the_views_see_each_vertex_in(closed_head):
    """View 0's masks say hair everywhere, view 1's skin: a vertex both views see is half of each, one that only one
    sees is that view's part, one that neither sees is none."""
    mesh_in, _, _, cameras, _, visible, _, _ = closed_head
    masks = torch.zeros(2, len(REGIONS), SIZE, SIZE)
    masks[0, REGIONS.index("hair")] = 1
    masks[1, REGIONS.index("skin")] = 1
    parts = vertex_parts(mesh_in.verts, cameras, visible, masks)
    hair, skin = parts[:, REGIONS.index("hair")], parts[:, REGIONS.index("skin")]
    both, first, neither = visible.all(1), visible[:, 0] & ~visible[:, 1], ~visible.any(1)
    assert bool(both.any() and first.any() and neither.any())
    assert torch.allclose(hair[both], torch.full_like(hair[both], 0.5)) and torch.allclose(skin[both], hair[both])
    assert bool((hair[first] == 1).all() and (skin[first] == 0).all())
    assert float(parts[neither].abs().max()) == 0.0


def test_hair_likeness_tells_hair_colours_from_skin_colours():
    generator = torch.Generator().manual_seed(0)
    hair = torch.tensor([0.9, 0.8, 0.2]) + 0.03 * torch.randn(200, 3, generator=generator)
    skin = torch.tensor([0.9, 0.6, 0.6]) + 0.03 * torch.randn(300, 3, generator=generator)
    likeness = hair_likeness(torch.tensor([[0.92, 0.8, 0.25], [0.88, 0.6, 0.58]]), hair.clamp(0, 1), skin.clamp(0, 1))
    assert likeness.tolist() == [1.0, 0.0]


def test_hair_coloured_sides_start_in_the_exemplars_hair_with_hair_sides(closed_head):
    """A blonde input (yellow crown and back, pink face; on its sides yellow at x > 0, pink at x < 0): with
    hair_sides the yellow side starts in the exemplar's hair (blue), as the back does, and the pink side as
    without it; without content parts nothing changes."""
    mesh_in, _, views, cameras, _, visible, _, _ = closed_head
    x, y, z = mesh_in.verts.unbind(1)
    yellow, pink = torch.tensor([0.9, 0.8, 0.2]), torch.tensor([0.9, 0.6, 0.6])
    blonde = (y > 0.5) | (z < -0.3) | ((x > 0.3) & (z < 0.2))
    mesh_in = dataclasses.replace(mesh_in, colors=torch.where(blonde[:, None], yellow, pink))
    stylized, _, visible = observe_mesh(mesh_in, cameras, CONTENT)
    masks = torch.zeros(2, len(REGIONS), SIZE, SIZE)
    masks[:, REGIONS.index("hair"), :SIZE // 4] = 1  # the crown, as the views' landmarks would cut it
    masks[:, REGIONS.index("skin"), SIZE // 4:] = 1
    image, hair = two_tone_painting()
    starts = {}
    for weight, parts in ((0.0, masks), (1.0, masks), (1.0, None)):
        _, result = style_all_round(mesh_in, mesh_in, cameras, views, stylized, visible, image, torch.ones(48, 48),
                                    tiny_network(), quick_settings(iterations=0, max_edge_px=0, start_noise=0,
                                                                   hair_sides=weight),
                                    progress=False, back_mask=hair, content_parts=parts)
        starts[weight, parts is None] = result.start
    blue = torch.tensor([0.1, 0.2, 0.9])
    side = z.abs() < 0.1
    yellow_side, pink_side = side & (x > 0.5) & (y.abs() < 0.3), side & (x < -0.5) & (y.abs() < 0.3)
    assert bool(yellow_side.any() and pink_side.any())
    assert float((starts[1.0, False][yellow_side] - blue).norm(dim=1).max()) < 0.2  # the views graze it: a little yellow
    assert float((starts[0.0, False][yellow_side] - blue).norm(dim=1).min()) > 0.3
    assert torch.allclose(starts[1.0, False][pink_side], starts[0.0, False][pink_side])
    assert torch.allclose(starts[1.0, True], starts[0.0, False])
