"""Head regions: the style loss matches the content head to the exemplar's head, never to its background, and the
stylized views keep a plain background."""
from dataclasses import replace

import numpy as np
import torch

from tests.synthetic import ROOT, face_points, quick_settings, tiny_network
from utils.io.landmarks import load_landmarks
from utils.style.regions import content_footprint, head_mask, head_style_target, positions_in, shared_mask
from utils.style import strotss
from utils.style.strotss import rgb_to_yuv, style_target
from utils.style.stylize import DeformableStyleTransfer, ScaleProblem, ViewInputs, stylize_views

RED, BLUE, GREY, WHITE = (0.9, 0.1, 0.1), (0.1, 0.2, 0.9), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)
SIZE = 64


def disc(size, radius):
    """(size, size) bool disc in the middle."""
    ys, xs = np.mgrid[:size, :size]
    return (xs - size / 2 + 0.5) ** 2 + (ys - size / 2 + 0.5) ** 2 < radius ** 2


def two_colour(mask, inside, outside):
    """(3, H, W) image: ``inside`` where mask, ``outside`` elsewhere."""
    mask = torch.as_tensor(mask, dtype=torch.float32)
    return torch.tensor(inside).view(3, 1, 1) * mask + torch.tensor(outside).view(3, 1, 1) * (1 - mask)


def test_head_mask_takes_the_face_and_the_hair_above_it_but_not_the_corners():
    landmarks = load_landmarks(ROOT / "example" / "style" / "astronaut_caricature.txt", order="auto")
    mask = head_mask(landmarks, 512, 512)
    inside = mask[np.round(landmarks[:, 1]).astype(int).clip(0, 511), np.round(landmarks[:, 0]).astype(int).clip(0, 511)]
    assert inside.all()
    brow_top = int(landmarks[17:27, 1].min())
    forehead_x = int(landmarks[27, 0])
    assert mask[max(brow_top - 40, 0), forehead_x] == 1  # hair above the brows
    assert mask[0, 0] == 0 and mask[0, -1] == 0


def test_style_target_samples_only_the_exemplars_head():
    head = disc(80, 25)
    style = two_colour(head, RED, BLUE)[None].repeat(2, 1, 1, 1)
    network, generator = tiny_network(), torch.Generator().manual_seed(0)
    features = network(style)
    masked = head_style_target(strotss, features, (80, 80), torch.from_numpy(head), 512, generator, "full", 0)
    plain = style_target(features, (80, 80), 512, generator, "full", 0)
    red, blue = (rgb_to_yuv((torch.tensor(c) - network.mean.view(3)) / network.std.view(3)) for c in (RED, BLUE))
    assert torch.allclose(masked.yuv, red.expand_as(masked.yuv), atol=1e-4)
    assert (plain.yuv - blue).norm(dim=-1).lt(1e-4).any()  # without the mask the background is matched too


def disc_inputs():
    """Two 64 px views of a grey disc on white; an exemplar with a red head (its mask) on a blue background."""
    content = two_colour(disc(SIZE, 22), GREY, WHITE)[None].repeat(2, 1, 1, 1)
    landmarks = torch.tensor(np.stack([face_points(SIZE)] * 2) * 0.9 + 3.2, dtype=torch.float32)
    grid = np.stack(np.meshgrid(np.linspace(22, 42, 5), np.linspace(22, 42, 5)), -1).reshape(-1, 2)
    head = disc(80, 25)
    style = two_colour(head, RED, BLUE)[None].repeat(2, 1, 1, 1)
    return ViewInputs(content, style, landmarks, landmarks + 1.0, torch.tensor(np.stack([grid, grid], 1)).float(),
                      torch.ones(len(grid), 2, dtype=torch.bool), content_footprint(content, WHITE),
                      torch.from_numpy(head).float()[None, None].repeat(2, 1, 1, 1), WHITE)


def test_result_samples_stay_inside_the_contents_footprint():
    inputs = disc_inputs()
    transfer = DeformableStyleTransfer(inputs, tiny_network(), quick_settings(), progress=False)
    problem = ScaleProblem(inputs, transfer.network, transfer.settings, 1, transfer.generator)
    field = transfer.warp.displacement_field(transfer.displacements)
    positions = transfer.result_positions(problem, field).long()
    assert len(positions) > 100
    assert inputs.content_mask[0, 0][positions[:, 1], positions[:, 0]].bool().all()


def test_stylized_head_takes_the_exemplars_head_and_the_background_stays_plain():
    inputs = disc_inputs()
    settings = quick_settings(iterations=15, learning_rate=0.05, warp_lr_factor=0.0)  # no warp: footprint fixed
    result = stylize_views(inputs, tiny_network(), settings, progress=False)
    outside = ~torch.from_numpy(disc(SIZE, 25))
    assert (result.stylized[:, :, outside] - 1.0).abs().max() < 1e-3
    face = result.stylized[:, :, torch.from_numpy(disc(SIZE, 15))]
    assert face[:, 0].mean() > face[:, 2].mean() + 0.05  # reddened (the head), not blued (the background)
    plain = stylize_views(inputs, tiny_network(), replace(settings, regions=False), progress=False)
    assert (plain.stylized[:, :, outside] - 1.0).abs().max() > 0.05  # without regions the background changes
    assert shared_mask(inputs.content_mask, (SIZE, SIZE)).sum() == inputs.content_mask[0].sum()
    assert len(positions_in(torch.zeros(8, 8, dtype=torch.bool), 10, torch.Generator())) == 10
