"""adapters.torch.LMNMonitor(measures=[...]): progress measures beside the LMN, in the CSV and the writer."""

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import LMNMonitor, read_monitor_csv

MEASURES = ["effective_rank", "weight_movement", "local_complexity", "l2"]


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.SiLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3)).double()


@pytest.fixture()
def inputs():
    return torch.randn(40, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def train(model, inputs, monitor, steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(steps):
        monitor.step(step)
        loss = model(inputs).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


class Recorder:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


def by_hand(model, initial, inputs):
    """The four measures at layer "1" from lmn_core, on weights and representations read here."""
    params = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
    w2, b2 = params["2.weight"], params["2.bias"]
    with torch.no_grad():
        hidden = model[1](model[0](inputs)).numpy()
    return {
        "effective_rank_1": lmn_core.effective_rank(hidden),
        "weight_movement": lmn_core.weight_movement(params, initial),
        "local_complexity_1": float(lmn_core.local_complexity(hidden, lambda z: [z @ w2.T + b2])),
        "l2": lmn_core.l2(params),
    }


def test_the_monitor_logs_the_measures_equal_to_the_cores_by_hand(inputs, tmp_path):
    model = make_model()
    initial = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
    writer = Recorder()
    csv_path = tmp_path / "lmn.csv"
    monitor = LMNMonitor(
        model, inputs, "1", every_n_steps=3, csv_path=csv_path, writer=writer, measures=MEASURES, n_points=5
    )
    train(model, inputs, monitor, 3)  # measured at step 0
    monitor.step(3)
    expected = by_hand(model, initial, inputs)
    assert monitor.last_measures == pytest.approx(expected, rel=1e-9)
    assert expected["weight_movement"] > 0.01  # the weights moved, so the initial ones were kept
    rows = read_monitor_csv(csv_path)
    assert list(rows) == ["step", "lmn_1", "lmn_n_samples", *expected]
    assert rows["step"].tolist() == [0, 3] and rows["weight_movement"][0] == 0.0
    for column, value in expected.items():
        assert rows[column][1] == pytest.approx(value, rel=1e-9)
    assert {(tag, step) for tag, _, step in writer.scalars} == {
        (tag, step) for tag in ["lmn_1", *expected] for step in (0, 3)
    }


def test_no_measures_keeps_the_columns_of_before(inputs, tmp_path):
    monitor = LMNMonitor(make_model(), inputs, "1", csv_path=tmp_path / "lmn.csv", n_points=5)
    monitor.step(0)
    assert monitor.columns == ["step", "lmn_1", "lmn_n_samples"] and monitor.last_measures == {}
    assert list(read_monitor_csv(tmp_path / "lmn.csv")) == ["step", "lmn_1", "lmn_n_samples"]


USER_MEASURE = '''
import numpy as np
import lmn_core


@lmn_core.progress_measure(["representations", "outputs", "samples"])
def spread_ratio(inputs):
    """Mean absolute representation over mean absolute output, plus the samples' count."""
    return np.abs(inputs.representations).mean() / np.abs(inputs.outputs).mean() + len(inputs.samples)
'''


def test_a_users_measure_from_a_file_appears_in_the_csv(inputs, tmp_path):
    path = tmp_path / "elsewhere" / "my_measures.py"
    path.parent.mkdir()
    path.write_text(USER_MEASURE)
    model = make_model()
    csv_path = tmp_path / "lmn.csv"
    monitor = LMNMonitor(model, inputs, "3", csv_path=csv_path, measures=[f"{path}:spread_ratio"], n_points=5)
    monitor.step(0)
    with torch.no_grad():
        hidden, outputs = model[:4](inputs).numpy(), model(inputs).numpy()
    expected = np.abs(hidden).mean() / np.abs(outputs).mean() + 40
    assert read_monitor_csv(csv_path)["spread_ratio_3"].tolist() == pytest.approx([expected], rel=1e-12)


def test_a_measure_the_head_cannot_supply_is_refused_naming_it_and_the_layer(inputs):
    with pytest.raises(lmn_core.MeasureError, match=r"local_complexity.*pre_activations.*layer '3'"):
        LMNMonitor(make_model(), inputs, "3", measures=["local_complexity"])
    with pytest.raises(lmn_core.MeasureError, match=r"pieces_mean.*pwl_head.*layer '0'"):
        LMNMonitor(make_model(), inputs, "0", measures=["pieces_mean"])
    with pytest.raises(lmn_core.MeasureError, match=r"fourier_share.*task:embedding"):
        LMNMonitor(make_model(), inputs, "1", measures=["fourier_share"])
    with pytest.raises(lmn_core.MeasureError, match="unknown measure 'rank'"):
        LMNMonitor(make_model(), inputs, "1", measures=["rank"])


def test_a_csv_of_other_columns_is_refused(inputs, tmp_path):
    csv_path = tmp_path / "lmn.csv"
    LMNMonitor(make_model(), inputs, "1", csv_path=csv_path, n_points=5).step(0)
    with pytest.raises(ValueError, match="has the columns"):
        LMNMonitor(make_model(), inputs, "1", csv_path=csv_path, measures=["l2"])
