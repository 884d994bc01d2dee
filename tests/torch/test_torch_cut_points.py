"""adapters.torch.cut_points: the layers split can cut at, in graph order; refusals name the nearest."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adapters.torch import cut_points, split
from reference_tasks.model.torch_model import build_model


class BasicBlock(nn.Module):
    """torchvision's ResNet block: two 3x3 convolutions, a skip connection, one ReLU used twice."""

    def __init__(self, inputs: int, outputs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class SmallResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNET_CUTS = [
    "conv1",
    "bn1",
    "relu",
    "layer1.0",
    "layer1.1",
    "layer1",
    "layer2.0",
    "layer2",
    "avgpool",
    "fc",
]


def test_cut_points_of_a_resnet() -> None:
    model = SmallResNet().eval()
    images = torch.randn(4, 3, 8, 8)
    assert cut_points(model, images) == RESNET_CUTS
    assert cut_points(model) == RESNET_CUTS  # without examples: the graph alone
    for layer in RESNET_CUTS:
        body, head = split(model, layer, example_inputs=images)
        with torch.no_grad():
            torch.testing.assert_close(head(body(images)), model(images), rtol=0, atol=0)


def test_cut_points_of_the_reference_mlp() -> None:
    model = build_model(31, 31)
    pairs = torch.randint(0, 31, (8, 2))
    expected = ["embedding.tables.0", "embedding", "linear1", "hidden1", "linear2", "hidden2", "output"]
    assert cut_points(model, pairs) == expected


def test_cut_points_of_nested_chains() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.SiLU(), nn.Linear(4, 2)))
    assert cut_points(model, torch.randn(5, 3)) == ["0", "1.0", "1.1", "1"]


def test_a_refusal_names_the_nearest_cut_points() -> None:
    model = SmallResNet().eval()
    with pytest.raises(
        ValueError, match=r"skip connection.*nearest cut points: 'layer1' before it and 'layer2.0' after"
    ):
        split(model, "layer2.0.conv2")
    with pytest.raises(ValueError, match=r"called 2 times.*'layer1.0' before it and 'layer1.1' after it"):
        split(model, "layer1.1.relu", example_inputs=torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"nearest cut points: 'relu' before it and 'layer1.0' after it"):
        split(model, "layer1.0.bn1")
