"""The shared training recipe and measurement schedule, and what these packages import."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_tasks.tasks import lmn_sample_indices
from reference_tasks.training.recipe import (
    TrainConfig,
    checkpoint_schedule,
    eval_steps,
    lmn_checkpoints,
    probes_at,
)


def test_defaults_are_the_papers_recipe():
    config = TrainConfig()
    assert (config.learning_rate, config.weight_decay, config.steps) == (1e-3, 0.2, 20000)
    assert config.loss_dtype == "float64" and config.computed_loss_dtype == "float64"
    assert (config.embedding_dim, config.hidden_dim, config.train_fraction) == (32, 100, 0.8)
    assert config.probes == ("embedding", "hidden1", "hidden2") and config.lmn_samples is None


def test_every_probe_is_measured_where_the_paper_draws_every_layer_and_hidden1_elsewhere():
    # the paper's Figure 3 (LMN at every layer) is addition mod 31's; S4 and XOR show hidden1
    assert TrainConfig(task="modadd").probes == ("embedding", "hidden1", "hidden2")
    assert TrainConfig(task="s4").probes == TrainConfig(task="xor").probes == ("hidden1",)
    assert TrainConfig(task="xor", probes=("embedding", "hidden1")).probes == ("embedding", "hidden1")
    assert TrainConfig(task="xor", probes=()).probes == ()


def test_default_checkpoints_are_about_100_and_denser_early():
    points = checkpoint_schedule(20000)
    assert 100 <= points.size <= 105
    assert points[0] == 0 and points[-1] == 20000
    assert np.all(np.diff(points) > 0)
    assert np.sum(points < 1000) > np.sum((points >= 10000) & (points < 11000)) * 5


@given(st.integers(1, 100000), st.integers(1, 200))
def test_checkpoints_include_both_ends(steps, n_points):
    points = checkpoint_schedule(steps, n_points)
    assert points[0] == 0 and points[-1] == steps
    assert np.all(np.diff(points) > 0)
    assert points.size >= min(n_points, steps + 1)


def test_eval_steps():
    steps = eval_steps(TrainConfig(steps=1000, n_checkpoints=20))
    assert set(range(100)) <= set(steps.tolist())
    assert set(range(0, 1001, 10)) <= set(steps.tolist())
    assert set(lmn_checkpoints(TrainConfig(steps=1000, n_checkpoints=20)).tolist()) <= set(steps.tolist())
    assert steps[-1] == 1000
    assert eval_steps(TrainConfig(steps=25, eval_every=10, dense_eval_steps=0, probes=())).tolist() == [
        0,
        10,
        20,
        25,
    ]


def test_explicit_checkpoints_and_no_probes():
    assert lmn_checkpoints(TrainConfig(steps=50, checkpoint_steps=(50, 0, 7, 7))).tolist() == [0, 7, 50]
    assert lmn_checkpoints(TrainConfig(steps=50, probes=())).size == 0


@given(
    steps=st.integers(1, 3000), n_points=st.integers(1, 120), every=st.integers(1, 9), headline=st.booleans()
)
def test_side_probes_are_measured_at_checkpoints_spread_over_log_steps(steps, n_points, every, headline):
    probes = ("embedding", "hidden1", "hidden2") if headline else ("embedding", "hidden2")
    config = TrainConfig(steps=steps, n_checkpoints=n_points, side_probe_every=every, probes=probes)
    schedule = probes_at(config)
    checkpoints = lmn_checkpoints(config).tolist()
    assert list(schedule) == checkpoints
    side = [step for step, measured in schedule.items() if "embedding" in measured]
    assert side[0] == checkpoints[0] and side[-1] == checkpoints[-1]
    assert len(side) <= math.ceil(len(checkpoints) / every) + 1 or every == 1
    assert all(("hidden2" in measured) == ("embedding" in measured) for measured in schedule.values())
    assert all(("hidden1" in measured) == headline for measured in schedule.values())
    if every == 1:
        assert all(measured == probes for measured in schedule.values())


def test_the_default_side_checkpoints_cover_every_decade_of_a_full_run():
    side = sorted(step for step, measured in probes_at(TrainConfig()).items() if "embedding" in measured)
    assert len(side) == 11 and side[0] == 0 and side[-1] == 20000
    decades = np.log10(np.array(side[1:]) + 1)
    assert np.diff(decades).max() < 0.6  # no gap over 0.6 decades: the memorization bump (50-200) is seen
    assert any(50 <= step <= 200 for step in side)


def test_lmn_subset_is_seeded():
    subset = lmn_sample_indices(961, size=100, seed=4)
    assert subset.size == 100 and np.unique(subset).size == 100 and subset.max() < 961
    assert np.array_equal(subset, lmn_sample_indices(961, size=100, seed=4))
    assert not np.array_equal(subset, lmn_sample_indices(961, size=100, seed=5))
    assert np.array_equal(lmn_sample_indices(961, size=None, seed=4), np.arange(961))
    assert np.array_equal(lmn_sample_indices(961, size=961, seed=4), np.arange(961))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"probes": ("hidden3",)}, "unknown probes"),
        ({"lmn_samples": 0}, "lmn_samples must be at least 1"),
        ({"eval_every": 0}, "eval_every must be at least 1"),
        ({"side_probe_every": 0}, "side_probe_every must be at least 1"),
        ({"steps": 10, "checkpoint_steps": (11,)}, "checkpoint_steps must lie in 0..10"),
        ({"activation": "swish"}, "unknown activation 'swish'; the reference MLP has silu, relu, leaky_relu"),
    ],
)
def test_config_is_validated(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_the_activation_is_silu_unless_named_and_sweepable():
    from reference_tasks.sweep.plan import parse_grid, plan_sweep
    from reference_tasks.training.recipe import train_config_from_json

    assert TrainConfig().activation == "silu"
    record = {
        key: value for key, value in TrainConfig(activation="relu").__dict__.items() if key != "activation"
    }
    assert train_config_from_json(record).activation == "silu"  # written before the field existed
    grid = parse_grid(["activation=relu,silu"])
    assert grid == {"activation": ("relu", "silu")}
    runs = plan_sweep(tasks=["xor"], seeds=[0], framework="torch", out=Path("out"), grid=grid)
    assert [(run.name, run.config.activation) for run in runs] == [
        ("xor-activationrelu-seed0", "relu"),
        ("xor-activationsilu-seed0", "silu"),
    ]
    with pytest.raises(ValueError, match=r"xor-activationgelus-seed0: unknown activation 'gelus'"):
        plan_sweep(
            tasks=["xor"],
            seeds=[0],
            framework="torch",
            out=Path("out"),
            grid=parse_grid(["activation=gelus"]),
        )


def test_s4_alone_takes_a_heavier_weight_decay_unless_one_is_given():
    assert TrainConfig(task="s4").weight_decay == 1.0
    assert TrainConfig(task="xor").weight_decay == 0.2
    assert TrainConfig(task="s4", weight_decay=0.2).weight_decay == 0.2
    assert TrainConfig(task="s4") == TrainConfig(task="s4", weight_decay=1.0)
