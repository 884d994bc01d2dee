"""``lmn plot``: the LMN of each layer against the step, drawn from a monitor's CSV or a run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.schedule import MonitorCSV, read_monitor_csv
from reference_tasks.cli import main
from reference_tasks.report.monitor_plot import monitor_figure

RUN = Path(__file__).resolve().parents[2] / "results" / "torch" / "modadd-seed0"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def monitor_csv(path: Path) -> Path:
    csv = MonitorCSV(path, ["layer1", "layer2"])
    for step in (0, 100, 200, 300):
        csv.append(
            step, {"lmn_layer1": 3.0 + step / 100, "lmn_layer2": 7.5 - step / 150, "lmn_n_samples": 64}
        )
    return path


def lines(figure) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    return {
        (k, line.get_label()): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
        for k, axes in enumerate(figure.axes)
        for line in axes.get_lines()
    }


def test_a_monitor_csv_is_drawn_as_it_is(tmp_path) -> None:
    path = monitor_csv(tmp_path / "lmn.csv")
    drawn = lines(monitor_figure(path))
    table = read_monitor_csv(path)
    assert set(drawn) == {(0, "layer1"), (0, "layer2")}  # no loss column: one panel
    for layer in ("layer1", "layer2"):
        np.testing.assert_array_equal(drawn[0, layer][0], [0, 100, 200, 300])
        np.testing.assert_array_equal(drawn[0, layer][1], table[f"lmn_{layer}"])
    assert main(["plot", str(path), "--quiet"]) == 0
    assert (tmp_path / "lmn.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_run_folder_is_drawn_beside_its_losses_on_a_log_axis(tmp_path) -> None:
    figure = monitor_figure(RUN, log_steps=True)
    table = read_monitor_csv(RUN / "metrics.csv")
    drawn = lines(figure)
    losses = {"train_loss", "test_loss", "restricted_loss", "excluded_loss"}  # Nanda et al.'s are losses too
    assert {column for column in table if "loss" in column} == losses
    assert set(drawn) == {(0, "embedding"), (0, "hidden1"), (0, "hidden2"), *((1, loss) for loss in losses)}
    for (panel, label), (x, y) in drawn.items():
        column = table[f"lmn_{label}" if panel == 0 else label]
        measured = np.isfinite(column)
        np.testing.assert_array_equal(x, table["step"][measured] + 1)
        np.testing.assert_array_equal(y, column[measured])
    # the checkpoints where each probe was measured, not the 2164 rows of the file
    assert drawn[0, "hidden1"][0].size == 100 and drawn[0, "embedding"][0].size == 11
    assert figure.axes[0].get_xscale() == "log"
    out = tmp_path / "run.png"
    assert main(["plot", str(RUN), "--log-steps", "--out", str(out), "--quiet"]) == 0
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_a_file_without_lmn_columns_is_refused(tmp_path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("step,loss\n0,1.0\n")
    with pytest.raises(SystemExit, match="no LMN column"):
        main(["plot", str(path)])
    with pytest.raises(SystemExit, match="no such CSV file or run folder"):
        main(["plot", str(tmp_path / "missing.csv")])
