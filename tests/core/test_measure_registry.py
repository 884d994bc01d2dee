"""The progress-measure protocol and registry (docs/design.md, section 6.1): users' measures, refusals."""

import sys
import textwrap

import numpy as np
import pytest

import lmn_core
from lmn_core import measure_registry
from lmn_core.progress import NEEDS, MeasureError, MeasureInputs

USER_MEASURE = textwrap.dedent(
    """
    import numpy as np
    import lmn_core

    @lmn_core.progress_measure(needs=["representations"])
    def mean_norm(inputs):
        \"\"\"Mean Euclidean norm of the representations.\"\"\"
        return float(np.linalg.norm(inputs.representations, axis=1).mean())

    not_a_measure = 3
    """
)
Z = np.array([[3.0, 4.0], [0.0, 1.0]])


def test_a_measure_in_a_file_outside_the_package_resolves_and_computes(tmp_path):
    path = tmp_path / "elsewhere" / "my_measures.py"
    path.parent.mkdir()
    path.write_text(USER_MEASURE)
    [measure] = lmn_core.select_measures([f"{path}:mean_norm"], {"representations", "weights"})
    assert measure.name == "mean_norm" and measure.per_probe
    assert measure.description == "Mean Euclidean norm of the representations."
    assert lmn_core.compute_measure(measure, MeasureInputs(representations=Z)) == pytest.approx(3.0)
    with pytest.raises(MeasureError, match="is a int, not a measure: wrap the function"):
        lmn_core.resolve_measure(f"{path}:not_a_measure")
    with pytest.raises(MeasureError, match="has no attribute 'missing'"):
        lmn_core.resolve_measure(f"{path}:missing")
    with pytest.raises(MeasureError, match="does not exist"):
        lmn_core.resolve_measure(f"{tmp_path}/nowhere.py:mean_norm")


def install_plugin(folder, monkeypatch, module, entry_point):
    """A package ``module`` holding USER_MEASURE, with ``entry_point`` in group lmn.measures, on sys.path."""
    (folder / f"{module}.py").write_text(USER_MEASURE)
    info = folder / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lmn.measures]\n{entry_point}\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_a_measure_registered_through_an_entry_point_resolves_and_computes(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "lmn_plugin", "mean_norm = lmn_plugin:mean_norm")
    assert "mean_norm" in lmn_core.available_measures()
    # Selected by name, and by default wherever the run supplies representations.
    [measure] = lmn_core.select_measures(["mean_norm"], {"representations"})
    assert lmn_core.compute_measure(measure, MeasureInputs(representations=Z)) == pytest.approx(3.0)
    defaults = [m.name for m in lmn_core.select_measures(None, {"representations", "weights"})]
    assert defaults == ["l2", "effective_rank", "mean_norm"]
    # The same module is also reachable as module:function.
    assert lmn_core.resolve_measure("lmn_plugin:mean_norm").name == "mean_norm"


def test_an_entry_point_must_carry_the_measures_name(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "lmn_named", "l2 = lmn_named:mean_norm")
    with pytest.raises(MeasureError, match="holds a measure named 'mean_norm'"):
        lmn_core.available_measures()


def test_default_selection_is_every_builtin_measure_whose_needs_are_met():
    everything = set(NEEDS) | {
        f"task:{key}"
        for key in ("embedding", "modulus", "key_frequencies", "train_mask", "parity_signs", "parity_subset")
    }
    assert [m.name for m in lmn_core.select_measures(None, everything)] == list(lmn_core.BUILTIN_MEASURES)
    supplied = {"weights", "initial_weights", "representations", "pre_activations", "outputs"}
    names = [m.name for m in lmn_core.select_measures(None, supplied)]
    assert names == ["l2", "weight_movement", "effective_rank", "local_complexity"]
    per_probe = {name: lmn_core.BUILTIN_MEASURES[name].per_probe for name in names}
    assert per_probe == {
        "l2": False,
        "weight_movement": False,
        "effective_rank": True,
        "local_complexity": True,
    }


def test_refusals_name_the_measure():
    with pytest.raises(MeasureError, match=r"unknown measure 'rank'.*'effective_rank'"):
        lmn_core.select_measures(["rank"], {"representations"})
    with pytest.raises(
        MeasureError, match=r"measure 'pieces_mean' needs \['pwl_head'\], which this run cannot"
    ):
        lmn_core.select_measures(["pieces_mean"], {"representations"})
    with pytest.raises(MeasureError, match="selected twice"):
        lmn_core.select_measures(["l2", "l2"], {"weights"})
    with pytest.raises(MeasureError, match="list of names"):
        lmn_core.select_measures("l2", {"weights"})
    with pytest.raises(MeasureError, match="module 'no_such_module_here' cannot be imported"):
        lmn_core.resolve_measure("no_such_module_here:f")
    with pytest.raises(MeasureError, match=r"measure 'l2' needs \['weights'\], which the run did not supply"):
        lmn_core.compute_measure(lmn_core.BUILTIN_MEASURES["l2"], MeasureInputs())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([1.0, 2.0]), "ndarray of shape \\(2,\\)"),
        (float("nan"), "nan \\(not finite\\)"),
        ("3", "str of shape"),
        (True, "bool"),
    ],
)
def test_a_measure_returning_anything_but_one_finite_number_is_refused(value, message):
    bad = lmn_core.progress_measure(["weights"], name="bad")(lambda inputs: value)
    with pytest.raises(MeasureError, match=f"measure 'bad' returned {message}"):
        lmn_core.compute_measure(bad, MeasureInputs(weights={"w": np.ones(2)}))


def test_a_measure_that_raises_is_named_and_chained():
    def broken(inputs):
        raise KeyError("w")

    measure = lmn_core.Measure("broken", broken, frozenset({"weights"}))
    with pytest.raises(MeasureError, match="measure 'broken' raised KeyError") as raised:
        lmn_core.compute_measure(measure, MeasureInputs(weights={"w": np.ones(2)}))
    assert isinstance(raised.value.__cause__, KeyError)


def test_bad_declarations_are_refused():
    with pytest.raises(MeasureError, match="identifier"):
        lmn_core.Measure("my measure", lambda inputs: 1.0, frozenset())
    with pytest.raises(MeasureError, match=r"needs \['activations'\], which no run supplies"):
        lmn_core.Measure("m", lambda inputs: 1.0, frozenset({"activations"}))

    def named(inputs):
        return 1.0

    with pytest.raises(MeasureError, match="collection of names"):
        lmn_core.progress_measure("weights")(named)


def test_builtin_measures_compute_from_inputs():
    rng = np.random.default_rng(0)
    w = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(3)}
    w0 = {name: np.zeros_like(value) for name, value in w.items()}
    z = rng.standard_normal((20, 4))
    head = lmn_core.PiecewiseLinearHead(
        [lmn_core.Affine(rng.standard_normal((5, 4)), rng.standard_normal(5)), lmn_core.Hinge()]
    )
    inputs = MeasureInputs(
        weights=w,
        initial_weights=w0,
        representations=z,
        pre_activations=lambda x: head.layers[0](x),
        pwl_head=head,
    )
    values = {
        m.name: lmn_core.compute_measure(m, inputs) for m in lmn_core.select_measures(None, inputs.supplies())
    }
    assert values["l2"] == pytest.approx(values["weight_movement"]) == pytest.approx(lmn_core.l2(w))
    assert values["effective_rank"] == pytest.approx(lmn_core.effective_rank(z))
    assert values["pieces_mean"] == pytest.approx(lmn_core.linear_regions(head, z).pieces_mean)
    assert values["local_complexity"] >= 0
    assert measure_registry.ENTRY_POINT_GROUP == "lmn.measures"
