"""Parts to parts (STROTSS's spatial guidance): the head is cut into the same parts on both sides from the 68
landmarks, and each part of the output takes its style only from the exemplar's same part."""
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from tests.synthetic import quick_settings, tiny_network

from utils.io.landmarks import load_landmarks
from utils.style.io import StyleExemplar
from utils.style import strotss_fast
from utils.style.regions import (REGIONS, _grown_hull, exemplar_head, head_mask, labels_of, painted_background,
                                 part_labels, part_masks, part_samples, part_style_targets,
                                 guided_style_loss)
from utils.style.palette import matched_by_part
from utils.style.stylize import ViewInputs, stylize_views

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
HAIR, SKIN, SKY, GREY, WHITE = (0.35, 0.2, 0.05), (0.95, 0.7, 0.6), (0.2, 0.4, 0.9), (0.5, 0.5, 0.5), (1.0,) * 3


def landmarks(size=SIZE):
    """A real face's 68 landmarks (the example caricature's), the jaw 0.45 of ``size`` wide, a little low in the
    image (room for hair): (68, 2) pixel (x, y)."""
    points = load_landmarks(ROOT / "example" / "style" / "astronaut_caricature.txt", order="auto")
    points = (points - points.mean(0)) * (0.45 * size / np.ptp(points[:17, 0]))
    return points + [size / 2, 0.56 * size]


def paint(labels, colours, outside):
    """(3, H, W) image from part labels (H, W): colours {part index: rgb}, ``outside`` where the label is -1."""
    image = torch.tensor(outside, dtype=torch.float32).view(3, 1, 1).repeat(1, *labels.shape)
    for part, colour in colours.items():
        image[:, labels == part] = torch.tensor(colour).view(3, 1)
    return image


def head_inputs(exemplar_head=None):
    """Two identical views of a grey head (a white highlight on the nose) on white; an exemplar of the same
    shape whose hair is one flat colour and its skin (face and neck) another, on a blue sky."""
    points = landmarks()
    head = head_mask(points, SIZE, SIZE)
    labels = labels_of(part_masks(points, head)[None])[0]
    content = paint(labels, {r: GREY for r in range(len(REGIONS))}, WHITE)
    nose = labels == REGIONS.index("nose")
    content[:, nose & (torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(0)) < 0.5)] = 1.0
    style_head = head if exemplar_head is None else exemplar_head
    style_labels = labels_of(part_masks(points, style_head)[None])[0]
    skin = {r: SKIN for r in range(len(REGIONS)) if REGIONS[r] != "hair"}
    style = paint(style_labels, {**skin, REGIONS.index("hair"): HAIR}, SKY)
    grid = np.stack(np.meshgrid(np.linspace(20, 44, 4), np.linspace(20, 44, 4)), -1).reshape(-1, 2)
    twice = lambda tensor: torch.stack([torch.as_tensor(tensor)] * 2).float()  # noqa: E731
    verts2d = torch.tensor(np.stack([grid] * 2, 1)).float()
    return ViewInputs(twice(content), twice(style), twice(points), twice(points), verts2d,
                      torch.ones(len(grid), 2, dtype=torch.bool), twice(head)[:, None], twice(style_head)[:, None],
                      WHITE, twice(part_masks(points, head)), twice(part_masks(points, style_head))), labels


def hairless_head(points):
    """The exemplar's head (SIZE, SIZE) of landmarks (68, 2) without its hair part."""
    hair = part_masks(points, np.ones((SIZE, SIZE)))[REGIONS.index("hair")] > 0
    return head_mask(points, SIZE, SIZE) * ~hair.numpy()


def distance(colour, expected):
    """Euclidean distance between a colour tensor (3,) and an rgb tuple."""
    return float((colour - torch.tensor(expected)).norm())


def mean_colour(images, labels, names, margin=2):
    """Mean colour (3,) over all views of the pixels of the parts ``names`` at least ``margin`` px inside them
    (the background is blended into the head's edge): images (K, 3, H, W)."""
    inside = torch.isin(labels, torch.tensor([REGIONS.index(n) for n in names])).float()[None, None]
    inside = -torch.nn.functional.max_pool2d(-inside, 2 * margin + 1, 1, margin)[0, 0] > 0.5
    return images[:, :, inside].mean((0, 2))


def test_parts_cover_the_head_without_gaps_or_overlaps_and_follow_the_landmarks():
    points = landmarks(128)
    head = head_mask(points, 128, 128)
    masks = part_masks(points, head)
    assert masks.shape == (len(REGIONS), 128, 128)
    torch.testing.assert_close(masks.sum(0), torch.from_numpy(head))  # one part per head pixel, none outside
    assert (masks.flatten(1).sum(1) > 0).all()  # every part is there on a whole head
    at = lambda point: int(masks[:, int(round(point[1])), int(round(point[0]))].argmax())  # noqa: E731
    assert REGIONS[at(points[30])] == "nose" and REGIONS[at(points[62])] == "lips"
    assert REGIONS[at(points[37:39].mean(0))] == "eyes" and REGIONS[at(points[44:46].mean(0))] == "eyes"
    assert REGIONS[at((points[31] + points[2]) / 2)] == "skin"  # the cheek
    assert REGIONS[at(points[8] + [0, 6])] == "neck" and REGIONS[at([points[27, 0], 3])] == "hair"


def test_part_samples_lie_in_their_parts_in_every_image():
    points = landmarks()
    masks = torch.stack([part_masks(points, head_mask(points, SIZE, SIZE)),
                         part_masks(points + [3.0, -2.0], head_mask(points + [3.0, -2.0], SIZE, SIZE))])
    samples = part_samples(masks, 400, torch.Generator().manual_seed(0))
    assert samples.positions.shape == (2, sum(samples.counts), 2) and all(samples.counts)
    labels = labels_of(masks)
    for r, part in samples.slices():
        for b in range(2):
            xy = samples.positions[b, part].long()
            assert (labels[b, xy[:, 1], xy[:, 0]] == r).all()


def test_a_part_the_exemplar_lacks_takes_the_whole_head():
    points = landmarks()
    inputs, _ = head_inputs(exemplar_head=hairless_head(points))
    network, generator = tiny_network(), torch.Generator().manual_seed(0)
    targets = part_style_targets(strotss_fast, network(inputs.style), (SIZE, SIZE), inputs.style_parts, 600, generator)
    assert targets.fallback == tuple(name == "hair" for name in REGIONS)
    skin = torch.tensor(SKIN) - network.mean.view(3)
    hair_target = targets.targets[REGIONS.index("hair")]
    assert hair_target.yuv.shape[1] > targets.targets[REGIONS.index("skin")].yuv.shape[1]  # the whole head's samples
    assert torch.allclose(hair_target.mean[:, :3] * network.std.view(3), skin.expand(2, 3), atol=1e-4)
    images = inputs.content.clone().requires_grad_(True)
    loss = guided_style_loss(strotss_fast, network, images, inputs.content_parts, targets, 256, generator)
    loss.sum().backward()
    assert loss.shape == (2,) and images.grad[:, :, 2:12, 28:36].abs().sum() > 0  # the hair is styled too


@pytest.mark.parametrize("parts", [True, False])
def test_with_parts_hair_takes_the_hair_colour_and_skin_the_skin_colour(parts):
    inputs, labels = head_inputs()
    settings = quick_settings(iterations=25, learning_rate=0.05, warp_lr_factor=0.0, parts=parts, part_palette=0.0)
    result = stylize_views(inputs, tiny_network(), settings, progress=False)  # the style loss alone, from grey
    hair = mean_colour(result.stylized, labels, ["hair"])
    skin = mean_colour(result.stylized, labels, ["skin", "nose"])
    highlight = mean_colour(result.stylized, labels, ["nose"])
    if parts:
        assert distance(hair, HAIR) < 0.1 and distance(skin, SKIN) < 0.1
        assert distance(highlight, SKIN) < 0.1  # the white highlight on the nose turned skin
    else:  # every part takes from the whole head: hair and skin mix
        assert distance(hair, HAIR) > 0.3 and distance(skin, SKIN) > 0.3


ROSE = (0.85, 0.1, 0.2)


def painting_with_roses(size=160, hair_everywhere=False):
    """A painted head (``landmarks``) on a sky, as the doll painting: hair in a halo round the face and a strand
    hanging down to the right-hand frame, a rose beside the left cheek touching the left-hand frame. Returns the
    image (H, W, 3) in [0, 1], its landmarks and the masks (H, W) bool of the hair, the rose and the sky."""
    points = landmarks(size)
    labels = part_labels(points, np.ones((size, size))).numpy()
    face = (labels >= 0) & (labels != REGIONS.index("hair"))
    ys, xs = np.mgrid[:size, :size]
    halo = np.zeros((size, size), np.uint8)
    for centre, growth in ((points, 1.5), (points - [0, 0.2 * size], 1.3)):  # round the face, and its crown
        cv2.fillConvexPoly(halo, np.round(_grown_hull(centre, growth)).astype(np.int32), 1)
    strand = (xs > points[:17, 0].max()) & (ys > points[36:48, 1].mean())
    hair = (np.ones_like(face) if hair_everywhere else (halo > 0) | strand) & ~face
    rose = (xs - 0.12 * size) ** 2 + (ys - points[3, 1]) ** 2 < (0.12 * size) ** 2
    sky = ~hair & ~face & ~rose
    image = np.empty((size, size, 3), np.float32)
    for mask, colour in ((face, SKIN), (hair, HAIR), (rose, ROSE), (sky, SKY)):
        image[mask] = colour
    return image, points, hair & ~rose, rose & ~face, sky


def test_the_paintings_background_beside_the_face_is_left_out_of_the_exemplars_head():
    image, points, hair, rose, sky = painting_with_roses()
    background = painted_background(image, points)
    head = head_mask(points, *image.shape[:2]) > 0.5
    assert rose[head].any() and sky[head].any()  # the grown head reaches them: without this they would be hair
    rose, sky, hair = (ndimage.binary_erosion(mask, iterations=3) for mask in (rose, sky, hair))  # not blurred edges
    assert background[rose & head].mean() > 0.95 and background[sky & head].mean() > 0.95
    assert not background[hair & head].any()  # the strand down to the frame stays hair
    assert not (exemplar_head(image, points) > 0.5)[rose].any()


def test_a_painting_with_hair_out_to_its_frame_keeps_its_whole_head():
    image, points, hair, _, _ = painting_with_roses(hair_everywhere=True)
    image[~hair & (image == SKY).all(-1)] = HAIR  # no sky at all
    background = painted_background(image, points)
    rose = (image == np.float32(ROSE)).all(-1)
    assert background[~rose].mean() < 0.01  # hair to the frame is hair; only the rose can go


def test_the_style_exemplar_keeps_its_head_and_hair_without_the_roses_for_every_step():
    image, points, _, rose, _ = painting_with_roses()
    style = StyleExemplar("roses", image, points)
    assert style.head is style.head  # computed once, for step 4a's parts and the 3D pass alike
    assert np.array_equal(style.head, exemplar_head(image, points))
    rose = ndimage.binary_erosion(rose, iterations=3)  # not its blurred edge
    assert not (style.hair > 0.5)[rose].any() and (style.hair > 0.5).any()
    assert not (style.hair > 0.5)[tuple(np.round(points[27:36]).astype(int)[:, ::-1].T)].any()  # the nose is face
    assert style.channels_first.shape == (3, *image.shape[:2])


def test_the_part_palette_gives_each_part_its_counterparts_colours():
    inputs, labels = head_inputs()
    start = matched_by_part(inputs.content, inputs.content_parts, inputs.style, inputs.style_parts)
    assert distance(mean_colour(start, labels, ["hair"]), HAIR) < 0.02
    assert distance(mean_colour(start, labels, ["skin", "nose"]), SKIN) < 0.02  # the nose's highlight too
    assert torch.equal(start[:, :, labels < 0], inputs.content[:, :, labels < 0])  # the background is kept
    half = matched_by_part(inputs.content, inputs.content_parts, inputs.style, inputs.style_parts, share=0.5)
    expected = (torch.tensor(GREY) + torch.tensor(HAIR)) / 2
    assert distance(mean_colour(half, labels, ["hair"]), expected.tolist()) < 0.02
    unchanged = matched_by_part(inputs.content, inputs.content_parts, inputs.style, inputs.style_parts, share=0.0)
    assert torch.equal(unchanged, inputs.content)


def test_the_part_palette_of_a_part_the_exemplar_lacks_comes_from_its_whole_head():
    inputs, labels = head_inputs(exemplar_head=hairless_head(landmarks()))
    start = matched_by_part(inputs.content, inputs.content_parts, inputs.style, inputs.style_parts)
    hair = mean_colour(start, labels, ["hair"])
    assert distance(hair, SKIN) < 0.02  # the whole head is all skin here


def test_stylize_views_ends_with_each_parts_palette_in_both_outputs():
    inputs, labels = head_inputs()
    settings = quick_settings(iterations=2, learning_rate=0.05, warp_lr_factor=0.0, part_palette=1.0)
    result = stylize_views(inputs, tiny_network(), settings, progress=False)
    for images in (result.stylized, result.unwarped):
        assert distance(mean_colour(images, labels, ["hair"]), HAIR) < 0.05
        assert distance(mean_colour(images, labels, ["skin"]), SKIN) < 0.05


def test_the_part_palette_of_an_exemplar_without_a_head_comes_from_its_whole_image():
    inputs, labels = head_inputs()
    nothing = torch.zeros_like(inputs.style_parts)  # degenerate landmarks: no part of the exemplar is found
    matched = matched_by_part(inputs.content, inputs.content_parts, inputs.style, nothing)
    assert bool(torch.isfinite(matched).all())
    assert distance(mean_colour(matched, labels, ["skin"]), GREY) > 0.1  # moved onto the image's colours
