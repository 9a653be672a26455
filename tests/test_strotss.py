"""The fast CPU STROTSS module (utils/style/strotss_fast.py) against the plain reference (utils/style/strotss.py):
same values and gradients; the device picks one of them."""
import inspect

import pytest
import torch

from tests.synthetic import load_inputs, quick_settings, tiny_network
from utils.style import strotss as reference
from utils.style import strotss_fast as fast
from utils.style.strotss import StrotssLosses
from utils.style.stylize import strotss_for, stylize_views


def test_the_cpu_gets_the_fast_module_and_other_devices_the_reference():
    assert strotss_for("cpu") is fast
    assert strotss_for(torch.device("cuda")) is reference
    assert strotss_for("meta") is reference


def test_both_modules_provide_the_interface_with_the_same_arguments_and_defaults():
    members = [name for name, value in vars(StrotssLosses).items() if inspect.isfunction(value)
               and not name.startswith("_")]
    assert {"style_target", "style_loss", "network_hypercolumns", "hypercolumns", "content_loss"} <= set(members)
    for name in members:
        wanted = list(inspect.signature(getattr(StrotssLosses, name)).parameters.values())[1:]  # without self
        given = [inspect.signature(getattr(module, name)).parameters for module in (reference, fast)]
        for parameters in given:  # the interface's arguments in its order; anything more is optional
            assert list(parameters)[:len(wanted)] == [p.name for p in wanted], name
            assert all(p.default is not p.empty for p in list(parameters.values())[len(wanted):]), name
        for p in wanted:
            defaults = [parameters[p.name].default for parameters in given]
            assert (p.default is p.empty) == (defaults[0] is p.empty) and defaults[0] == defaults[1], (name, p.name)


def value_and_gradient(function, leaf):
    """function(leaf) (B,) weighted by distinct factors per item, and the gradient of that sum."""
    leaf = leaf.detach().clone().requires_grad_(True)
    value = function(leaf)
    weights = torch.arange(1.0, len(value) + 1, dtype=value.dtype)
    gradient, = torch.autograd.grad((value * weights).sum(), leaf)
    return value.detach(), gradient


def assert_same_value_and_gradient(fast_function, reference_function, leaf, **tolerance):
    fast_value, fast_gradient = value_and_gradient(fast_function, leaf)
    value, gradient = value_and_gradient(reference_function, leaf)
    torch.testing.assert_close(fast_value, value, **tolerance)
    torch.testing.assert_close(fast_gradient, gradient, **tolerance)


@pytest.mark.parametrize("cosine, dim", [(True, 5), (True, 40), (False, 3), (False, 12)])
def test_fast_remd_equals_the_reference(cosine, dim):
    generator = torch.Generator().manual_seed(dim)
    x = 3.0 * torch.randn(2, 300, dim, generator=generator)
    y = torch.randn(2, 400, dim, generator=generator)
    if cosine:
        y = torch.nn.functional.normalize(y, dim=-1)  # the fast REMD takes unit targets
    assert_same_value_and_gradient(lambda leaf: fast.remd(leaf, y, cosine),
                                   lambda leaf: reference.remd(leaf, y, cosine), x)


@pytest.mark.parametrize("layer_size", [(12, 20), (3, 5), (1, 1)])
def test_fast_hypercolumns_equal_the_reference(layer_size):
    generator = torch.Generator().manual_seed(0)
    layer = torch.rand(2, 6, *layer_size, generator=generator)
    positions = torch.cat([torch.rand(40, 2, generator=generator) * torch.tensor([39.0, 23.0]),
                           torch.tensor([[0.0, 0.0], [39.0, 23.0], [-3.0, 30.0]])])
    weights = torch.rand(2, len(positions), 6, generator=generator)

    def summed(module):
        return lambda leaf: (module.hypercolumns([leaf], positions, (24, 40))[0] * weights).sum((1, 2))

    assert_same_value_and_gradient(summed(fast), summed(reference), layer)


def test_per_item_positions_sample_each_item_where_asked_in_both_modules():
    generator = torch.Generator().manual_seed(0)
    layer = torch.rand(3, 5, 8, 10, generator=generator)
    positions = torch.rand(3, 30, 2, generator=generator) * torch.tensor([39.0, 31.0])
    weights = torch.rand(3, 30, 5, generator=generator)

    def summed(module):
        return lambda leaf: (module.hypercolumns([leaf], positions, (32, 40))[0] * weights).sum((1, 2))

    assert_same_value_and_gradient(summed(fast), summed(reference), layer)
    for b in range(3):  # item b at its own positions is what a shared call at those positions gives for it
        torch.testing.assert_close(fast.hypercolumns([layer], positions, (32, 40))[0][b],
                                   fast.hypercolumns([layer], positions[b], (32, 40))[0][b])


@pytest.mark.parametrize("covariance", ["full", "layers"])
def test_fast_style_target_and_style_loss_equal_the_reference(covariance):
    network = tiny_network()
    style = network(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    targets = [module.style_target(style, (32, 32), 300, torch.Generator().manual_seed(0), covariance)
               for module in (fast, reference)]
    for name in ("unit", "yuv", "mean"):
        torch.testing.assert_close(getattr(targets[0], name), getattr(targets[1], name))
    for a, b in zip(targets[0].covariances, targets[1].covariances):
        torch.testing.assert_close(a, b)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    positions = reference.sample_positions(32, 32, 200, torch.Generator().manual_seed(3))

    def loss(module, target):
        return lambda leaf: module.style_loss(module.network_hypercolumns(network, leaf, positions),
                                              target.repeat(2), color_weight=0.5)

    assert_same_value_and_gradient(loss(fast, targets[0]), loss(reference, targets[1]), images)


def test_fast_network_hypercolumns_and_content_loss_equal_the_reference():
    network = tiny_network()
    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    content = network(torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1)))
    positions = reference.sample_positions(24, 24, 100, torch.Generator().manual_seed(2))

    def loss(module):
        return lambda leaf: module.content_loss(module.network_hypercolumns(network, leaf, positions),
                                                module.hypercolumns(content, positions, (24, 24)))

    assert_same_value_and_gradient(loss(fast), loss(reference), images)


def test_the_stylization_runs_the_same_with_the_reference_losses(example, monkeypatch):
    """What a GPU runs (the reference, exact REMD) gives the CPU's first loss values and moves the same way."""
    settings = quick_settings(iterations=6, search_rank=0)
    fast_run = stylize_views(load_inputs(example), tiny_network(), settings, progress=False)
    monkeypatch.setattr("utils.style.stylize.strotss_for", lambda device: reference)
    reference_run = stylize_views(load_inputs(example), tiny_network(), settings, progress=False)
    for name in ("style", "total"):
        torch.testing.assert_close(torch.tensor(fast_run.history[name][0]),
                                   torch.tensor(reference_run.history[name][0]))
    assert reference_run.history["total"][-1] < reference_run.history["total"][0]
    # rounding differences grow over the steps (at most 0.043 here): the two runs stay far closer than they moved
    change = (fast_run.stylized - load_inputs(example).content).abs().mean()
    assert (reference_run.stylized - fast_run.stylized).abs().mean() < 0.1 * change
    torch.testing.assert_close(reference_run.stylized, fast_run.stylized, atol=0.1, rtol=0)
