"""Batch norms folded into their convolutions leave a frozen network's features unchanged."""
from unittest import mock

import torch
from torch import nn

import models.features as features


class ConvNorm(nn.Module):
    """A convolution, a batch norm with non-trivial statistics, and an activation."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(5)
        self.norm.running_mean.uniform_(-1, 1)
        self.norm.running_var.uniform_(0.5, 2)
        self.norm.weight.data.uniform_(0.5, 1.5)
        self.norm.bias.data.uniform_(-1, 1)

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)))


def test_folding_removes_the_norm_and_keeps_the_output():
    torch.manual_seed(0)
    module = ConvNorm().eval()
    images = torch.randn(2, 3, 8, 8)
    expected = module(images)
    features.fold_batch_norms(module, [("conv", "norm")])
    assert isinstance(module.norm, nn.Identity)
    torch.testing.assert_close(module(images), expected, rtol=1e-5, atol=1e-5)


def test_efficientnet_runs_without_batch_norms_and_with_the_same_features():
    folded = features.load_feature_network("efficientnet-lite0", verbose=False)
    with mock.patch.object(features, "fold_batch_norms", lambda *args: None):
        plain = features.load_feature_network("efficientnet-lite0", verbose=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(images), folded(images)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
