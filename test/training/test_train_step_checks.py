"""The training step's one gradient check (a single host read per step)."""

from types import SimpleNamespace

import pytest
import torch

from monodepth2_ros.training.trainer import Trainer


@pytest.mark.parametrize(
    ("poison", "finite"), [(None, True), (float("nan"), False), (float("inf"), False), (-float("inf"), False), (1e30, True)]
)
def test_gradient_check_finds_one_bad_value_among_many(poison, finite):
    parameters = [torch.nn.Parameter(torch.zeros(shape)) for shape in ((64, 3, 3, 3), (64,), (10, 10))]
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    if poison is not None:
        parameters[0].grad[17, 1, 2, 0] = poison  # huge but finite: a sum of squares would overflow to inf
    holder = SimpleNamespace(parameters=parameters)
    assert Trainer._gradients_finite(holder) is finite
    assert Trainer._gradients_finite(SimpleNamespace(parameters=[torch.nn.Parameter(torch.zeros(2))])) is True
