"""Style transfer step (run.py, utils/stylize.py and friends): mechanics on tiny synthetic views."""
import json

import numpy as np
import pytest
import torch

import run
from tests.synthetic import STYLE_SIZE, face_points, load_inputs, quick_settings, smooth_image, tiny_network
from utils.style.style_view import apply_homography, rotate_exemplar, rotation_homography, fit_similarity
from utils.io.images import save_image
from utils.rendering.cameras import make_cameras, world_to_pixel
from utils.style.stylize import ConsistencyTerm, stylize_views
from utils.style.warp import LandmarkWarp

SIZE = STYLE_SIZE


def test_fit_similarity_recovers_a_similarity():
    rng = np.random.default_rng(0)
    source = rng.random((20, 2)) * 100
    angle, scale, shift = 0.4, 1.7, np.array([5.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = scale * source @ rotation.T + shift
    matrix = fit_similarity(source, target)
    np.testing.assert_allclose(matrix[:2, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:2, 2], shift, atol=1e-8)


def test_rotation_by_zero_degrees_is_the_identity():
    np.testing.assert_allclose(rotation_homography(0.0, 80, 60, 15.0), np.eye(3), atol=1e-12)
    image, points = smooth_image(SIZE, 1), face_points(SIZE)
    turned, moved = rotate_exemplar(image, points, 0.0, 15.0)
    np.testing.assert_allclose(turned, image, atol=1e-6)
    np.testing.assert_allclose(moved, points, atol=1e-9)


def test_rotation_grows_the_side_that_comes_nearer():
    matrix = rotation_homography(20.0, 100, 100, 30.0)
    left, right = apply_homography(matrix, np.array([[10.0, 50.0], [89.0, 50.0]]))
    centre = apply_homography(matrix, np.array([[49.5, 49.5]]))[0]
    assert right[0] - centre[0] > centre[0] - left[0]


def spread_points(size):
    """68 points on a spiral filling a size x size image, several pixels apart (the warp needs no face; a face's
    68 points crowd a 64 px image): (68, 2) (x, y)."""
    t = np.linspace(0, 1, 68)
    angle = 2 * np.pi * t * 5
    radius = np.where(t < 0.25, 0.32, np.where(t < 0.6, 0.12, 0.2)) * size
    return size / 2 + np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)


def test_warp_moves_a_drawn_dot_to_the_warped_landmark():
    landmarks = torch.tensor(spread_points(SIZE), dtype=torch.float32).round()[None]
    displacements = torch.zeros_like(landmarks)
    index = 10  # a dot drawn there moves by (2.5, -2) in the warped image (a backward map would move it by -d)
    displacements[0, index] = torch.tensor([2.5, -2.0])
    warp = LandmarkWarp(landmarks, SIZE, border_per_side=8, field_size=SIZE)
    x, y = landmarks[0, index].round().long().tolist()
    image = torch.zeros(1, 1, SIZE, SIZE)
    image[0, 0, y - 1:y + 2, x - 1:x + 2] = 1.0
    field = warp.displacement_field(displacements)
    warped = warp.warp_images(image, warp.inverse_field(field))[0, 0]
    ys, xs = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
    centroid = torch.stack([(warped * xs).sum(), (warped * ys).sum()]) / warped.sum()
    expected = torch.tensor([x, y], dtype=torch.float32) + displacements[0, index]
    assert torch.linalg.norm(centroid - expected) < 0.5
    moved = warp.move_points(landmarks, displacements)
    torch.testing.assert_close(moved, landmarks + displacements, atol=1e-3, rtol=0)


def test_consistency_term_is_zero_for_agreeing_views_only():
    verts = torch.tensor([[[10.0, 10.0], [20.0, 20.0]], [[30.0, 5.0], [5.0, 30.0]]])  # (V=2, K=2, 2)
    term = ConsistencyTerm(verts, torch.ones(2, 2, dtype=torch.bool))
    flat = torch.full((2, 3, SIZE, SIZE), 0.5)
    assert float(term(flat, term.points, SIZE)) == 0.0
    flat[1] = 0.25
    assert float(term(flat, term.points, SIZE)) == pytest.approx(0.25)


def test_optimisation_lowers_the_loss_and_pulls_landmarks_to_targets(example):
    inputs = load_inputs(example)
    result = stylize_views(inputs, tiny_network(), quick_settings(iterations=15), progress=False)
    history = result.history
    assert np.mean(history["total"][-3:]) < np.mean(history["total"][:3])
    start = (inputs.landmarks - inputs.targets).norm(dim=-1).mean()
    end = (result.landmarks_warped - inputs.targets).norm(dim=-1).mean()
    assert end < 0.5 * start
    assert result.stylized.shape == result.unwarped.shape == (2, 3, SIZE, SIZE)
    assert result.verts2d_warped.shape == inputs.verts2d.shape


def test_optimising_below_the_content_size_keeps_the_content_pixel_frame(example):
    """The CPU profile optimises at a smaller size than the content views: landmarks, vertex projections and
    outputs stay in the content views' pixel frame."""
    inputs = load_inputs(example)
    result = stylize_views(inputs, tiny_network(), quick_settings(image_size=SIZE // 2, iterations=15),
                           progress=False)
    assert result.stylized.shape == result.unwarped.shape == (2, 3, SIZE, SIZE)
    start = (inputs.landmarks - inputs.targets).norm(dim=-1).mean()
    assert (result.landmarks_warped - inputs.targets).norm(dim=-1).mean() < 0.5 * start
    assert torch.isfinite(result.verts2d_warped).all()
    assert (result.verts2d_warped > 0).all() and (result.verts2d_warped < SIZE - 1).all()


def test_consistency_weight_makes_views_agree(example):
    inputs = load_inputs(example)
    only_consistency = quick_settings(style_weight=0.0, warp_weight=0.0, tv_weight=0.0, consistency_weight=1.0,
                                      iterations=10)
    history = stylize_views(inputs, tiny_network(), only_consistency, progress=False).history["consistency"]
    assert history[-1] < 0.5 * history[0]


def test_epipolar_weight_keeps_the_warped_vertices_on_each_others_epipolar_lines(example):
    inputs = load_inputs(example)
    inputs.projections = world_to_pixel(make_cameras(torch.tensor([-10.0, 10.0]), torch.zeros(2), 3.0, 15.0,
                                                     torch.zeros(3)), STYLE_SIZE)
    inputs.verts2d[:, 1, 1] += 1.5  # the second view's projections off the first's epipolar lines
    only_epipolar = quick_settings(style_weight=0.0, warp_weight=0.0, tv_weight=0.0, consistency_weight=0.0,
                                   epipolar_weight=1.0, iterations=10)
    history = stylize_views(inputs, tiny_network(), only_epipolar, progress=False).history["epipolar"]
    assert history[0] > 0.5 and history[-1] < 0.5 * history[0]
    without = stylize_views(inputs, tiny_network(), quick_settings(epipolar_weight=0.0, iterations=2), progress=False)
    assert set(without.history["epipolar"]) == {0.0}


def test_same_seed_gives_the_same_output(example):
    inputs = load_inputs(example)
    first = stylize_views(inputs, tiny_network(), quick_settings(iterations=3), progress=False)
    second = stylize_views(inputs, tiny_network(), quick_settings(iterations=3), progress=False)
    assert torch.equal(first.stylized, second.stylized)
    assert torch.equal(first.verts2d_warped, second.verts2d_warped)


def test_run_writes_the_contract_outputs(example, monkeypatch):
    monkeypatch.setattr(run, "load_feature_network", lambda *args, **kwargs: tiny_network())
    run.main(["--content-dir", str(example / "content"), "--style-dir", str(example / "style"),
              "--output", str(example / "output"), "--device", "cpu", "--image-size", str(SIZE),
              "--iterations", "2", "--checkpoint-every", "1", "--result-samples", "128", "--style-samples", "128",
              "--search-rank", "5", "--no-reconstruct", "--no-report"])
    out = example / "output" / "face" / "toon"
    for k in range(2):
        assert (out / f"stylized_{k}.png").is_file() and (out / f"unwarped_{k}.png").is_file()
        assert (out / "intermediate" / f"keypoints_view{k}.png").is_file()
    assert (out / "intermediate" / "loss_curves.png").is_file()
    assert (out / "intermediate" / "scale3_iter0002_view1.png").is_file()
    assert np.load(out / "verts2d_warped.npy").shape == (81, 2, 2)
    params = json.loads((out / "params.json").read_text())
    assert params["network"] == "tiny" and params["settings"]["image_size"] == SIZE
    assert params["settings"]["search_rank"] == 5
    assert not list(out.rglob("*.tmp-*"))


@pytest.mark.parametrize("breakage, expected", [
    (lambda root: (root / "content" / "face" / "landmarks_1.txt").unlink(), "landmarks_1.txt"),
    (lambda root: (root / "style" / "toon.txt").unlink(), "toon.txt"),
    (lambda root: (root / "style" / "toon.png").write_bytes(b"not an image"), "toon.png"),
    (lambda root: save_image(root / "content" / "face" / "view_1.png", smooth_image(SIZE + 8, 3)), "size"),
])
def test_bad_input_gets_one_line_before_any_work(example, capsys, monkeypatch, breakage, expected):
    breakage(example)
    monkeypatch.setattr(run, "stylize_views", lambda *a, **k: pytest.fail("optimisation started"))
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--content-dir", str(example / "content"), "--style-dir", str(example / "style"),
                  "--output", str(example / "output"), "--device", "cpu", "--no-reconstruct"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0]
    assert not (example / "output").exists()


def test_remd_matches_differentiating_through_the_min():
    from utils.style.strotss_fast import remd
    torch.manual_seed(0)
    x = (3.0 * torch.randn(2, 30, 5)).requires_grad_(True)  # any length: the cosine cost compares directions
    y = torch.nn.functional.normalize(torch.randn(2, 40, 5), dim=-1)
    remd(x, y).sum().backward()
    fast_grad = x.grad.clone()
    x.grad = None
    cost = 1.0 - torch.nn.functional.normalize(x, dim=-1) @ y.transpose(1, 2)
    reference = torch.maximum(cost.min(2).values.mean(1), cost.min(1).values.mean(1))
    reference.sum().backward()
    torch.testing.assert_close(remd(x, y), reference)
    torch.testing.assert_close(fast_grad, x.grad)


def test_euclidean_remd_matches_differentiating_through_the_min():
    from utils.style.strotss_fast import remd
    torch.manual_seed(0)
    x = torch.rand(2, 300, 3).requires_grad_(True)
    y = torch.rand(2, 400, 3)
    remd(x, y, cosine=False).sum().backward()
    fast_grad = x.grad.clone()
    x.grad = None
    cost = (torch.cdist(x, y).square() / 3).clamp(min=1e-5).sqrt()
    reference = torch.maximum(cost.min(2).values.mean(1), cost.min(1).values.mean(1))
    reference.sum().backward()
    torch.testing.assert_close(remd(x, y, cosine=False), reference)
    torch.testing.assert_close(fast_grad, x.grad)


def test_hypercolumns_read_pixel_centres():
    from utils.style.strotss_fast import hypercolumns
    image = torch.rand(1, 3, 8, 8)
    coarse = torch.nn.functional.avg_pool2d(image, 2)
    columns = hypercolumns([image, coarse], torch.tensor([[3.0, 5.0], [0.5, 0.5]]), (8, 8))
    torch.testing.assert_close(columns[0][0, 0], image[0, :, 5, 3])
    torch.testing.assert_close(columns[1][0, 1], coarse[0, :, 0, 0])


def low_rank_unit_rows(batch, count, dim, rank, seed):
    """Unit rows (batch, count, dim) that vary in only ``rank`` directions around a common mean."""
    generator = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, 1, dim, generator=generator)
    directions = torch.randn(batch, rank, dim, generator=generator)
    weights = torch.randn(batch, count, rank, generator=generator)
    return torch.nn.functional.normalize(mean + weights @ directions, dim=-1)


def test_subspace_search_finds_the_exact_neighbours_when_the_targets_span_the_subspace():
    from utils.style.strotss_fast import SubspaceSearch, _nearest_cosine
    targets = low_rank_unit_rows(2, 300, 40, 6, seed=0)
    queries = torch.nn.functional.normalize(torch.randn(2, 100, 40, generator=torch.Generator().manual_seed(1)), dim=-1)
    search = SubspaceSearch.fit(targets, rank=7)
    exact = _nearest_cosine(queries, targets)
    found = search.nearest(queries)
    assert torch.equal(found[0], exact[0]) and torch.equal(found[1], exact[1])
    assert search.repeat(2).keys.shape == (4, 300, 8)


def test_subspace_remd_is_near_the_exact_one_and_never_below_it():
    from utils.style.strotss_fast import SubspaceSearch, remd
    targets = low_rank_unit_rows(2, 400, 64, 40, seed=2)
    queries = low_rank_unit_rows(2, 200, 64, 40, seed=3)
    exact = remd(queries, targets)
    approximate = remd(queries, targets, search=SubspaceSearch.fit(targets, rank=24))
    assert torch.all(approximate >= exact - 1e-6)
    assert torch.all(approximate <= exact * 1.05)
    assert torch.all(approximate > exact + 1e-6)  # a real approximation at this rank: the test can tell


def test_style_target_uses_the_subspace_search_only_below_full_rank():
    from utils.style.strotss_fast import style_target
    features = tiny_network()(torch.rand(2, 3, 32, 32))
    generator = torch.Generator().manual_seed(0)
    assert style_target(features, (32, 32), 200, generator, search_rank=8).search.basis.shape == (2, 27, 8)
    assert style_target(features, (32, 32), 200, generator, search_rank=0).search is None
    assert style_target(features, (32, 32), 200, generator, search_rank=27).search is None


def test_hypercolumn_gradients_keep_the_channels_last_layout():
    from utils.style.strotss_fast import hypercolumns
    features = torch.rand(2, 5, 16, 16)
    positions = torch.tensor([[3.0, 5.0], [10.5, 2.0], [15.0, 15.0]])
    gradients = []
    for layout in (torch.contiguous_format, torch.channels_last):
        leaf = features.clone().contiguous(memory_format=layout).requires_grad_(True)
        hypercolumns([leaf], positions, (16, 16))[0].square().sum().backward()
        gradients.append(leaf.grad)
    assert gradients[1].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gradients[0], gradients[1])


@pytest.mark.parametrize("on_device", [False, True])
def test_network_hypercolumns_equal_sampling_the_layers_in_value_and_gradient(on_device):
    from utils.style.strotss_fast import hypercolumns, network_hypercolumns
    network = tiny_network()
    if on_device:
        network.to_device("cpu")  # channels-last
    images = torch.rand(2, 3, 24, 24)
    positions = torch.tensor([[3.0, 5.0], [10.5, 2.0], [23.0, 23.0], [0.0, 12.5]])
    results = []
    for sample in (lambda x: hypercolumns(network(x), positions, (24, 24)),
                   lambda x: network_hypercolumns(network, x, positions)):
        leaf = images.clone().requires_grad_(True)
        columns = sample(leaf)
        sum((column.sin() * (index + 1)).sum() for index, column in enumerate(columns)).backward()
        results.append((columns, leaf.grad))
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(results[0][1], results[1][1])


def test_feature_network_runs_channels_last_on_the_cpu_with_the_same_features():
    network = tiny_network()
    images = torch.rand(2, 3, 16, 16)
    before = network(images)
    network.to_device("cpu")
    after = network(images)
    assert after[1].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("layer_size", [(12, 20), (3, 5), (1, 1), (1, 4)])
def test_hypercolumns_equal_grid_sample_with_border_padding(layer_size):
    from utils.io.images import pixel_to_grid
    from utils.style.strotss_fast import hypercolumns
    generator = torch.Generator().manual_seed(0)
    layer = torch.rand(2, 6, *layer_size, generator=generator).requires_grad_(True)
    positions = torch.cat([torch.rand(40, 2, generator=generator) * torch.tensor([39.0, 23.0]),
                           torch.tensor([[0.0, 0.0], [39.0, 23.0], [-3.0, 30.0]])])
    grid = pixel_to_grid(positions, 40, 24).expand(2, -1, -1).unsqueeze(1)
    expected = torch.nn.functional.grid_sample(layer, grid, mode="bilinear", padding_mode="border",
                                               align_corners=False).squeeze(2).transpose(1, 2)
    sampled = hypercolumns([layer], positions, (24, 40))[0]
    torch.testing.assert_close(sampled, expected)
    weights = torch.rand_like(expected)
    expected_grad, = torch.autograd.grad((expected * weights).sum(), layer)
    sampled_grad, = torch.autograd.grad((sampled * weights).sum(), layer)
    torch.testing.assert_close(sampled_grad, expected_grad)


def test_covariance_distance_equals_autograd_through_the_plain_product():
    from utils.style.strotss_fast import _CovarianceDistance, _covariance
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(2, 50, 1100, generator=generator, dtype=torch.float64)  # 3 column blocks
    centred = (samples - samples.mean(1, keepdim=True)).requires_grad_(True)
    target = _covariance(torch.randn(2, 60, 1100, generator=generator, dtype=torch.float64))
    assert torch.equal(target, target.transpose(1, 2))
    weights = torch.tensor([0.5, -2.0], dtype=torch.float64)
    expected = (centred.transpose(1, 2) @ centred / 49 - target).abs().sum((1, 2))
    expected_grad, = torch.autograd.grad((expected * weights).sum(), centred)
    distance = _CovarianceDistance.apply(centred, target)
    distance_grad, = torch.autograd.grad((distance * weights).sum(), centred)
    torch.testing.assert_close(distance, expected)
    torch.testing.assert_close(distance_grad, expected_grad)


def test_argmax_both_ways_matches_torch_on_mixed_sign_scores():
    from utils.style.strotss_fast import _argmax_both_ways
    scores = torch.randn(3, 300, 70, generator=torch.Generator().manual_seed(0))
    scores[1, 5] = -0.0
    scores[2] = -scores[2].abs()  # all negative
    along_rows, along_columns = _argmax_both_ways(scores.clone())
    assert torch.equal(along_rows, scores.argmax(2)) and torch.equal(along_columns, scores.argmax(1))
