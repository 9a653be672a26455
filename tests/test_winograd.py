"""The Winograd 3x3 convolution agrees with conv2d in value and input gradient, and replaces only eligible layers,
only when the network is placed on the CPU."""
import pytest
import torch
from torch import nn

from models.features import load_feature_network
import models.winograd as winograd
from models.winograd import WinogradConv2d, place_winograd


@pytest.mark.parametrize("shape", [(1, 5, 7, 9, 13), (2, 16, 8, 4, 4), (1, 3, 4, 1, 2), (2, 8, 8, 17, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_winograd_equals_conv2d_in_value_and_input_gradient(shape, channels_last):
    batch, channels, out_channels, height, width = shape
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, out_channels, 3, padding=1).requires_grad_(False)
    fast = WinogradConv2d(conv)
    images = torch.randn(batch, channels, height, width)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    outputs, grads = [], []
    for layer in (conv, fast):
        leaf = images.clone().requires_grad_(True)
        output = layer(leaf)
        output.backward(torch.linspace(-1, 1, output.numel()).view_as(output))
        outputs.append(output)
        grads.append(leaf.grad)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_winograd_output_takes_an_in_place_relu_like_a_convolution_output():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1).requires_grad_(False)
    images = torch.randn(1, 4, 8, 6)
    grads = []
    for layer in (conv, WinogradConv2d(conv)):  # VGG's ReLUs are in place: the output must allow it, backward too
        leaf = images.clone().requires_grad_(True)
        output = torch.relu_(layer(leaf))
        output.sum().backward()
        assert (output >= 0).all() and (output == 0).any()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_only_wide_3x3_stride_1_convolutions_are_replaced():
    layers = [nn.Conv2d(128, 8, 3, padding=1), nn.Conv2d(64, 8, 3, padding=1), nn.Conv2d(128, 8, 1),
              nn.Conv2d(128, 8, 3, stride=2, padding=1), nn.ReLU()]
    kinds = [type(layer) for layer in place_winograd(nn.Sequential(*layers), "cpu")]
    assert kinds == [WinogradConv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d, nn.ReLU]


@pytest.mark.slow
def test_vgg16_runs_its_layers_from_128_channels_in_winograd_form_on_the_cpu_only():
    network = load_feature_network("vgg16-random", "cpu", verbose=False)
    winograd = [layer for layer in network.modules() if isinstance(layer, WinogradConv2d)]
    assert len(winograd) == 10  # conv2_2 and every convolution of blocks 3 to 5
    assert all(layer.conv.weight.shape[1] >= 128 for layer in winograd)
    network.to_device("cpu")  # placing again changes nothing
    assert sum(isinstance(layer, WinogradConv2d) for layer in network.modules()) == 10
    network.to_device("meta")  # any device but the CPU: plain convolutions, no transformed filters
    assert not any(isinstance(layer, WinogradConv2d) for layer in network.modules())
    assert sum(isinstance(layer, nn.Conv2d) for layer in network.modules()) == 13
    assert [name for name, _ in network.named_buffers()] == ["mean", "std"]
    assert network.stages[3][0].weight.device.type == "meta"


@pytest.mark.slow
def test_a_network_placed_off_the_cpu_never_builds_the_winograd_form(monkeypatch):
    monkeypatch.setattr(winograd, "transform_filters", lambda weight: pytest.fail("Winograd filters built"))
    network = load_feature_network("vgg16-random", "meta", verbose=False)
    assert not any(isinstance(layer, WinogradConv2d) for layer in network.modules())
    assert [name for name, _ in network.named_buffers()] == ["mean", "std"]
