"""The head's last ``nn.Linear`` run wider: the same bits, chosen only when checked so and measured faster."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from adapters.torch import LayerLMN, layer_lmn
from adapters.torch import width as torch_width
from adapters.torch.width import WidenedLinear, candidate_widths, padded_once, widen_last_linear
from reference_tasks.model.torch_model import build_model


@given(st.integers(min_value=1, max_value=4096))
def test_candidate_widths_are_the_own_then_the_next_multiples_of_8_and_16(out_features):
    widths = candidate_widths(out_features)
    assert widths[0] == out_features and len(set(widths)) == len(widths)
    assert max(widths) == -(-out_features // 16) * 16 and all(width - out_features < 16 for width in widths)
    assert all(width == out_features or width % 8 == 0 for width in widths)


@pytest.fixture
def always_wide(monkeypatch):
    """Run every widened product wide, whatever this machine's kernels do to its bits."""
    monkeypatch.setattr(torch_width, "keeps_bits", lambda *shape: True)


@pytest.mark.parametrize("bias", [True, False])
def test_a_widened_linear_gives_the_layers_outputs_and_follows_its_training(bias, always_wide):
    torch.manual_seed(0)
    linear = nn.Linear(100, 31, bias=bias)
    widened = WidenedLinear(linear, 48)
    inputs = torch.randn(300, 100)
    with torch.no_grad():
        torch.testing.assert_close(widened(inputs), linear(inputs), rtol=1e-6, atol=1e-6)
        assert widened(inputs).shape == (300, 31)
        linear.weight.mul_(-2.0)  # a training step changes the layer: the widened one follows
        torch.testing.assert_close(widened(inputs), linear(inputs), rtol=1e-6, atol=1e-6)
        with padded_once(nn.Sequential(widened)):
            inside = widened(inputs)
        torch.testing.assert_close(inside, linear(inputs), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="width 30 is narrower than the layer's 31 outputs"):
        WidenedLinear(linear, 30)


def test_padded_once_pads_at_entry_and_forgets_at_exit(always_wide):
    linear = nn.Linear(4, 3)
    widened = WidenedLinear(linear, 8)
    inputs = torch.ones(2, 4)
    with torch.no_grad(), padded_once(nn.Sequential(nn.SiLU(), widened)):
        before = widened(inputs)
        linear.bias.add_(1.0)  # not seen inside: the padding was made at entry
        torch.testing.assert_close(widened(inputs), before)
    with torch.no_grad():
        torch.testing.assert_close(widened(inputs), before + 1.0)


def test_a_wider_width_is_chosen_only_when_it_is_measurably_faster(monkeypatch):
    def timed(seconds):
        def fastest_seconds(layers, inputs):
            return dict(zip(layers, seconds, strict=True))

        monkeypatch.setattr(torch_width, "_fastest_seconds", fastest_seconds)
        torch_width.fastest_width.cache_clear()
        return torch_width.fastest_width(100, 31, torch.float32, 64)

    assert candidate_widths(31) == [31, 32]
    assert timed([1.0, 0.5]) == 32
    assert timed([1.0, 0.85]) == 31  # within MIN_GAIN: not worth it (nor safe from noise)
    assert timed([0.5, 1.0]) == 31
    torch_width.fastest_width.cache_clear()


def test_only_a_sequential_ending_in_a_plain_linear_is_widened(monkeypatch):
    monkeypatch.setattr(torch_width, "fastest_width", lambda *shape: 32)
    head = nn.Sequential(nn.SiLU(), nn.Linear(100, 31))
    widened = widen_last_linear(head, rows=64)
    assert isinstance(widened[-1], WidenedLinear) and widened[-1].width == 32
    assert widened[-1].linear is head[1]
    assert isinstance(head[1], nn.Linear)  # the model's own head is left as it was
    for other in (nn.Sequential(nn.Linear(100, 31), nn.SiLU()), nn.Linear(100, 31), nn.Sequential()):
        assert widen_last_linear(other, rows=64) is other


def favour_the_widest(monkeypatch):
    """Time every width checked equal as faster the wider it is (the choice is then the widest)."""

    def fastest_seconds(layers, inputs):
        return {width: 1.0 / width**2 for width in layers}

    monkeypatch.setattr(torch_width, "_fastest_seconds", fastest_seconds)
    torch_width.fastest_width.cache_clear()


def test_the_lmn_is_the_same_with_and_without_widening(monkeypatch):
    favour_the_widest(monkeypatch)
    model = build_model(31, 31, seed=3)
    pairs = np.stack(np.meshgrid(np.arange(31), np.arange(31)), axis=-1).reshape(-1, 2)[::7]
    assert len(LayerLMN(model, "hidden2").head.module.module) == 0  # all folded: nothing to widen
    for probe in ("embedding", "hidden1"):
        measure = LayerLMN(model, probe, batch_size=64)
        chosen = torch_width.fastest_width(100, 31, torch.float32, 64)
        assert isinstance(measure.head.module.module[-1], WidenedLinear) == (chosen != 31)
        widened = measure(pairs)
        own = layer_lmn(model, pairs, probe, widen_output=False, batch_size=64)
        np.testing.assert_array_equal(widened.connectivity, own.connectivity)  # the same bits
        assert widened.lmn == own.lmn
    torch_width.fastest_width.cache_clear()


@pytest.mark.parametrize(("in_features", "out_features"), [(100, 31), (100, 10), (64, 47), (100, 24)])
def test_a_widened_linear_gives_the_layers_own_bits_for_any_number_of_rows(in_features, out_features):
    torch.manual_seed(out_features)
    linear = nn.Linear(in_features, out_features)
    for width in [*candidate_widths(out_features)[1:], out_features + 16]:
        widened = WidenedLinear(linear, width)
        for rows in (1, 2, 3, 5, 19, 100, 3230, 4096):
            inputs = torch.randn(rows, in_features)
            with torch.no_grad():
                assert torch.equal(widened(inputs), linear(inputs)), (width, rows)
                with widened.padded_once():
                    assert torch.equal(widened(inputs), linear(inputs)), (width, rows)
                    assert torch.equal(widened(inputs[0]), linear(inputs[0]))  # no batch axis


def test_a_width_that_changes_the_bits_is_never_run_nor_chosen(monkeypatch):
    favour_the_widest(monkeypatch)
    linear = nn.Linear(100, 31)
    inputs = torch.randn(64, 100)
    pad = torch_width._padded_parameters

    def off_by_a_bit(layer, width):
        weight, bias = pad(layer, width)
        return weight, torch.nextafter(bias, torch.full_like(bias, torch.inf))

    monkeypatch.setattr(torch_width, "_padded_parameters", off_by_a_bit)
    torch_width.keeps_bits.cache_clear()
    with torch.no_grad():
        assert torch.equal(WidenedLinear(linear, 32)(inputs), linear(inputs))  # the layer itself ran
    assert torch_width.fastest_width(100, 31, torch.float32, 64) == 31  # the fastest, but other bits
    assert not torch_width.keeps_bits(100, 31, 32, torch.float32, 64)
    torch_width.keeps_bits.cache_clear()
    torch_width.fastest_width.cache_clear()
