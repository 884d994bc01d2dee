"""The measurement and the trainer on one GPU, against floors measured in the same run.

One prepared script for a GPU machine (``python benchmarks/bench_gpu.py --json out.json``);
each section prints its lines as it goes and adds its figures to the JSON, and a section
that fails is recorded and the next one runs. Sections (``--sections``):

- ``measure``: the reference MLP of addition mod 31 at its memorization snapshot
  (``results/torch/modadd-seed0``), all N = 961 samples: the folded ``hidden1`` head's
  connectivity matrix (default settings) against the head's floor (the head alone on every
  interior point, in blocks of the same size), blocks of other budgets, the r² rule compiled
  by ``torch.compile`` (``compile_rule=True``), ``torch.profiler``'s table of one default
  connectivity matrix (where the device's time goes), and the whole ``layer_lmn`` at each
  probe (cut, body, pairs, spectrum);
- ``large``: the whole LMN at N = 10^4 and 3 x 10^4 (samples: the ``hidden1`` activations
  of random pairs, jittered), its time and peak memory, and the spectrum on the device
  against NumPy's;
- ``resnet``: a ResNet-18 (torchvision, random weights, 10 classes) at ``layer3`` on 256
  images 3x64x64, against its head's floor;
- ``keras``: Keras 3 on its PyTorch and JAX backends (a child process each), the same
  weights, against the PyTorch adapter (time and LMN); where their LMNs part: each one's
  float32 SiLU against SiLU in float64, the host path after each forward pass, and each
  one's device path against its host path; and each one's device path with the r² rule
  compiled (``compile_rule``) and not, and the first call of the rule alone each way;
- ``train``: a textbook full-batch AdamW loop against the trainer's step (one seed, and
  8 and 64 seeds stacked).

Times are medians of ``--repeats`` after a warm-up; the device is synchronized before a
clock is read. ``--quick`` shrinks every size (to try the script on a CPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SNAPSHOT = Path("results/torch/modadd-seed0")
SNAPSHOT_STEP = 155
PROBES = ("embedding", "hidden1", "hidden2")


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(function: Callable[[], Any], device: str, repeats: int, warm_up: bool = True) -> tuple[float, Any]:
    """The median seconds of ``repeats`` calls (after one warm-up call), and the last result."""
    result = function() if warm_up else None
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = function()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def reference_model(device: str) -> Any:
    """The addition-mod-31 MLP at its memorization snapshot, on ``device``."""
    import torch

    from reference_tasks.model.torch_model import GrokMLP
    from reference_tasks.runfolder.weights import load_snapshot

    model = GrokMLP(31, 31)
    weights = load_snapshot(SNAPSHOT, SNAPSHOT_STEP)
    model.load_state_dict({name: torch.from_numpy(value) for name, value in weights.items()})
    return model.to(device).eval()


def all_pairs() -> np.ndarray:
    from reference_tasks.tasks import make_task

    return make_task("modadd").pairs.astype(np.int64)


def head_floor(head: Any, X: Any, block_rows: int, device: str, repeats: int) -> float:
    """Seconds for the head alone on all 19 x N(N-1)/2 interior points, in blocks of ``block_rows``."""
    import torch

    n = X.shape[0]
    rows = 19 * n * (n - 1) // 2
    block_rows = min(block_rows, rows)
    generator = torch.Generator(device="cpu").manual_seed(0)
    pick = torch.randint(0, n, (2, block_rows), generator=generator).to(X.device)
    weight = torch.rand(block_rows, *([1] * (X.dim() - 1)), generator=generator).to(X.device, X.dtype)
    points = torch.lerp(X[pick[0]], X[pick[1]], weight)
    counts = [block_rows] * (rows // block_rows) + ([rows % block_rows] if rows % block_rows else [])

    def run() -> None:
        with torch.no_grad():
            for count in counts:
                head(points[:count])

    seconds, _ = timed(run, device, repeats)
    return seconds


def profile_table(function: Callable[[], Any], device: str, rows: int = 20) -> str:
    """``torch.profiler``'s table of one call of ``function``: where the device's time goes."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as profiler:
        function()
        synchronize(device)
    key = "cuda_time_total" if device.startswith("cuda") else "cpu_time_total"
    return profiler.key_averages().table(sort_by=key, row_limit=rows)


def section_measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import torch

    import lmn_core
    from adapters.torch import TorchFunction, layer_lmn, split
    from lmn_core.device import device_block_budget, device_pairs_per_block

    device, repeats = args.device, args.repeats
    model, pairs = reference_model(device), all_pairs()[: args.n_small]
    body, head = split(model, "hidden1", fold=True)
    with torch.no_grad():
        X = body(torch.from_numpy(pairs).to(device))
    function = TorchFunction(head, reduction="device")
    plan = function.device_plan()
    free = plan.free_memory if plan.free_memory is not None else 4 * 2**20
    budget = device_block_budget(free) if plan.free_memory is not None else free
    block = device_pairs_per_block(X.shape[1] * 4, 31, 21, budget)
    floor = head_floor(head, X, block * 19, device, repeats)
    samples = X.cpu().numpy()
    seconds, matrix = timed(lambda: lmn_core.connectivity_matrix(function, samples), device, repeats)
    host = lmn_core.connectivity_matrix(TorchFunction(copy.deepcopy(head).cpu(), reduction="host"), samples)
    line = {"n": len(samples), "floor_s": floor, "connectivity_s": seconds, "ratio": seconds / floor}
    line["block_pairs"], line["max_abs_diff_vs_host"] = block, float(np.abs(matrix - host).max())
    report["measure"] = {"connectivity": line}
    print(
        f"N = {len(samples)}: head floor {floor:.4f} s, connectivity {seconds:.4f} s ({seconds / floor:.2f}x)"
    )
    budgets = {}
    for power in (26, 28, 30, 31, 33):
        s, _ = timed(
            lambda p=power: lmn_core.connectivity_matrix(function, samples, memory_budget=2**p),
            device,
            repeats,
        )
        budgets[f"2**{power}"] = s
        print(f"  memory_budget 2**{power}: {s:.4f} s ({s / floor:.2f}x the floor)")
    report["measure"]["budgets_s"] = budgets
    started = time.perf_counter()
    rule_compiled = TorchFunction(head, reduction="device", compile_rule=True)
    compiled_matrix = lmn_core.connectivity_matrix(rule_compiled, samples)
    first = time.perf_counter() - started  # that call was the warm-up
    s, _ = timed(lambda: lmn_core.connectivity_matrix(rule_compiled, samples), device, repeats, warm_up=False)
    line = {"seconds": s, "ratio": s / floor, "first_call_s": first}
    line["max_abs_diff_vs_eager"] = float(np.abs(compiled_matrix - matrix).max())
    report["measure"]["rule_torch_compile"] = line
    print(
        f"  compile_rule=True: {s:.4f} s ({s / floor:.2f}x the floor; first call "
        f"{first:.1f} s), L differs from the uncompiled rule's by {line['max_abs_diff_vs_eager']:.1e}"
    )
    table = profile_table(lambda: lmn_core.connectivity_matrix(function, samples), device)
    report["measure"]["profile"] = table
    print(table)
    layers = {}
    for probe in PROBES:
        s, result = timed(lambda p=probe: layer_lmn(model, pairs, p), device, repeats)
        layers[probe] = {"seconds": s, "lmn": result.lmn}
        print(f"  layer_lmn at {probe}: {s:.4f} s, LMN {result.lmn:.7f}")
    report["measure"]["layer_lmn"] = layers


def jittered_samples(n: int, device: str, seed: int = 0) -> Any:
    """``hidden1`` activations of ``n`` random pairs, plus a little noise (so all are distinct)."""
    import torch

    from adapters.torch import split

    model = reference_model(device)
    body, _ = split(model, "hidden1", fold=True)
    rng = np.random.default_rng(seed)
    pairs = torch.from_numpy(rng.integers(0, 31, size=(n, 2))).to(device)
    with torch.no_grad():
        X = body(pairs)
    return X + 0.01 * torch.randn(X.shape, generator=torch.Generator(device="cpu").manual_seed(seed)).to(
        device
    )


def section_large(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import torch

    import lmn_core
    from adapters.torch import TorchFunction, split

    device = args.device
    _, head = split(reference_model(device), "hidden1", fold=True)
    function = TorchFunction(head, reduction="device")
    report["large"] = {}
    for n in args.n_large:
        samples = jittered_samples(n, device).cpu().numpy()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        big = n > 20000  # measured once, without a warm-up: the smaller ones warmed the same code
        repeats = 1 if big else min(args.repeats, 3)
        seconds, result = timed(lambda s=samples: lmn_core.lmn(function, s), device, repeats, warm_up=not big)
        peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
        report["large"][str(n)] = {"seconds": seconds, "lmn": result.lmn, "peak_bytes": peak}
        print(f"N = {n}: whole LMN {seconds:.3f} s, LMN {result.lmn:.6f}, peak {peak / 2**30:.2f} GiB")
        if n <= 10000:
            start = time.perf_counter()
            host = np.linalg.eigvalsh(result.connectivity)
            host_seconds = time.perf_counter() - start
            error = float(np.abs(host - result.eigenvalues).max())
            report["large"][str(n)].update(numpy_eigvalsh_s=host_seconds, eigenvalue_max_abs_diff=error)
            print(f"  numpy eigvalsh {host_seconds:.3f} s; device eigenvalues differ by {error:.2e} at most")
        del result


def section_resnet(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import torch
    import torchvision

    from adapters.torch import layer_lmn, split

    device = args.device
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(device).eval()
    images = torch.randn(args.n_images, 3, 64, 64).to(device)
    body, head = split(model, "layer3", example_inputs=images)
    with torch.no_grad():
        X = body(images)
    floor = head_floor(head, X, 2**15, device, args.repeats)
    seconds, result = timed(lambda: layer_lmn(model, images, "layer3"), device, args.repeats)
    report["resnet"] = {"floor_s": floor, "seconds": seconds, "ratio": seconds / floor, "lmn": result.lmn}
    ratio = seconds / floor
    print(f"ResNet-18 layer3, {args.n_images} images: {seconds:.3f} s, floor {floor:.3f} s ({ratio:.2f}x)")


def silu_error(silu: Callable[[np.ndarray], Any]) -> float:
    """The largest error of a float32 SiLU (the reference head's activation) on a grid of
    [-20, 20], in units of ``max(|silu(x)|, 1e-3)``, against SiLU in float64: where the
    backends' float32 heads part (a kernel's rounding, or an approximation)."""
    grid = np.linspace(-20.0, 20.0, 2**20, dtype=np.float32)
    exact = grid.astype(np.float64) / (1.0 + np.exp(-grid.astype(np.float64)))
    error = np.abs(np.asarray(silu(grid), dtype=np.float64) - exact)
    return float(np.max(error / np.maximum(np.abs(exact), 1e-3)))


def rule_first_calls(plan: Any, samples: np.ndarray, n_pairs: int = 4099) -> dict[str, float]:
    """Seconds of the first call of the core's r² rule alone on one block of ``n_pairs`` pairs
    (random outputs, 31 wide, the default 21 points), compiled by the plan's compiler and one
    operation at a time: what compiling costs before it pays. The block's shape is one no
    measurement had, so neither call finds anything compiled."""
    from lmn_core.device import DeviceMeasurement, block_rule, compiled_rule

    rng = np.random.default_rng(0)
    with plan.session():
        measurement = DeviceMeasurement(plan, samples, 21)
        xp, device = measurement.xp, measurement.device
        endpoints = xp.asarray(rng.normal(size=(len(samples), 31)), dtype=xp.float64, device=device)
        constants = measurement.constants(endpoints, 4e-6, 0.0).arguments()
        interior = xp.asarray(rng.normal(size=(19, n_pairs, 31)), dtype=xp.float32, device=device)
        pair_i = xp.asarray(rng.integers(0, len(samples), n_pairs), dtype=xp.int64, device=device)
        pair_j = xp.asarray(rng.integers(0, len(samples), n_pairs), dtype=xp.int64, device=device)
        same = pair_i == pair_j
        seconds = {}
        for name, rule in (("compiled", compiled_rule(plan.compile)), ("eager", block_rule)):
            started = time.perf_counter()
            values, _ = rule(xp, interior, pair_i, pair_j, same, endpoints, *constants)
            float(xp.sum(values))  # waits for the device
            seconds[name] = time.perf_counter() - started
    return seconds


def keras_child(backend: str, device: str, repeats: int, n: int) -> dict[str, Any]:
    """In a child process with ``KERAS_BACKEND=backend``: the Keras adapter's ``hidden1`` LMN.

    The first ``layer_lmn`` call (cut, and on JAX compiling), then a ``LayerLMN`` cut once and
    measured ``repeats`` times (as ``LMNCallback`` and the trainer measure).
    """
    import keras

    import lmn_core
    from adapters.keras import LayerLMN, layer_lmn
    from reference_tasks.model import keras_model
    from reference_tasks.runfolder.weights import load_snapshot

    model = keras_model.build_model(31, 31)
    keras_model.load_arrays(model, load_snapshot(SNAPSHOT, SNAPSHOT_STEP))
    pairs = all_pairs()[:n].astype(np.int32)
    started = time.perf_counter()
    first = layer_lmn(model, pairs, "hidden1")
    first_seconds = time.perf_counter() - started
    measure = LayerLMN(model, "hidden1")
    seconds, result = timed(lambda: measure(pairs), "cpu", repeats)
    where = str(getattr(result.matrix, "device", "host"))
    figures = {"backend": keras.backend.backend(), "seconds": seconds, "first_s": first_seconds,
               "lmn": result.lmn, "first_lmn": first.lmn, "matrix_on": where,
               "host_lmn": LayerLMN(model, "hidden1", reduction="host")(pairs).lmn}  # fmt: skip
    figures["silu_error"] = silu_error(
        lambda x: keras.ops.convert_to_numpy(keras.ops.silu(keras.ops.convert_to_tensor(x)))
    )
    # the rule compiled (jax.jit, torch.compile) and not, side by side (the device path, on a CPU too)
    samples = measure.body(pairs)
    for name, compile_rule in (("rule_compiled_s", True), ("rule_eager_s", False)):
        head = LayerLMN(model, "hidden1", reduction="device", compile_rule=compile_rule).head
        figures[name], on_device = timed(lambda h=head: lmn_core.lmn(h, samples), "cpu", repeats)
        figures["device_lmn"] = on_device.lmn
        if compile_rule:
            figures["rule_first_call_s"] = rule_first_calls(head.device_plan(), samples)
    return figures


def section_keras(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import torch

    from adapters.torch import LayerLMN

    model, pairs = reference_model(args.device), all_pairs()[: args.n_small]
    measure = LayerLMN(model, "hidden1")
    seconds, result = timed(lambda: measure(pairs), args.device, args.repeats)
    host_lmn = LayerLMN(model, "hidden1", reduction="host")(pairs).lmn
    error = silu_error(lambda x: torch.nn.functional.silu(torch.from_numpy(x).to(args.device)).cpu().numpy())
    report["keras"] = {
        "torch_adapter": {"seconds": seconds, "lmn": result.lmn, "host_lmn": host_lmn, "silu_error": error}
    }
    print(
        f"PyTorch adapter, LayerLMN at hidden1: {seconds:.4f} s, LMN {result.lmn:.10f} "
        f"(host path {host_lmn:.10f}); SiLU error {error:.1e}"
    )
    for backend in ("torch", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
        command = [sys.executable, __file__, "--keras-child", backend, "--repeats", str(args.repeats),
                   "--device", args.device, "--n-small", str(args.n_small)]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            report["keras"][backend] = {"error": done.stderr[-2000:]}
            print(f"Keras on {backend}: failed\n{done.stderr[-2000:]}")
            continue
        child = json.loads(done.stdout.strip().splitlines()[-1])
        child["ratio_to_torch"] = child["seconds"] / seconds
        child["lmn_relative_diff"] = abs(child["lmn"] / result.lmn - 1.0)
        # which part parts the backends: the same host path after each forward pass, and
        # each backend's own device path against its host path
        child["host_lmn_relative_diff"] = abs(child["host_lmn"] / host_lmn - 1.0)
        child["device_to_host_relative_diff"] = abs(child["device_lmn"] / child["host_lmn"] - 1.0)
        report["keras"][backend] = child
        print(
            f"Keras on {backend}: {child['seconds']:.4f} s ({child['ratio_to_torch']:.2f}x the adapter; "
            f"first call {child['first_s']:.2f} s), LMN {child['lmn']:.10f} "
            f"(relative difference {child['lmn_relative_diff']:.1e}), L on {child['matrix_on']}; "
            f"SiLU error {child['silu_error']:.1e}"
        )
        print(
            f"  host path after each forward pass: {child['host_lmn_relative_diff']:.1e} from the "
            f"adapter's; this backend's device path from its host path: "
            f"{child['device_to_host_relative_diff']:.1e}"
        )
        print(
            f"  the head's LMN on the device path, the rule compiled: {child['rule_compiled_s']:.4f} s; "
            f"one operation at a time: {child['rule_eager_s']:.4f} s"
        )
        first = child["rule_first_call_s"]
        print(
            f"  the rule's first call on a new block shape, compiled: {first['compiled']:.2f} s; "
            f"one operation at a time: {first['eager']:.2f} s"
        )


def section_train(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import torch
    from torch.nn import functional

    from reference_tasks.training.engine import TrainingData
    from reference_tasks.training.recipe import TrainConfig
    from reference_tasks.training.torch_engine import TorchEngine, build_model

    device, steps = args.device, args.train_steps
    config = TrainConfig(task="modadd", probes=())
    data = TrainingData.for_configs([config])
    model = build_model(config, data).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.2)
    x = torch.from_numpy(data.train_inputs[0]).to(device)
    y = torch.from_numpy(data.train_labels[0]).to(device)
    xt = torch.from_numpy(data.test_inputs[0]).to(device)
    yt = torch.from_numpy(data.test_labels[0]).to(device)

    def textbook() -> None:
        for step in range(steps):
            optimizer.zero_grad()
            loss = functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if step % 10 == 0:
                with torch.no_grad():
                    loss.item(), functional.cross_entropy(model(xt), yt).item()

    def trainer(engine: TorchEngine) -> Callable[[], None]:
        def run() -> None:
            for step in range(steps):
                if step % 10 == 0:
                    engine.evaluate("test"), engine.l2_norms()
                engine.update(step, step % 10 == 0)

        return run

    seconds, _ = timed(textbook, device, args.repeats)
    report["train"] = {"textbook_ms": 1e3 * seconds / steps}
    print(f"textbook loop: {1e3 * seconds / steps:.3f} ms a step (evaluation every 10 steps)")
    for seeds in (1, 8, 64):
        configs = [TrainConfig(task="modadd", probes=(), seed=seed) for seed in range(seeds)]
        engine = TorchEngine(configs, TrainingData.for_configs(configs), device)
        s, _ = timed(trainer(engine), device, args.repeats)
        report["train"][f"trainer_{seeds}_ms"] = 1e3 * s / steps
        per_step = 1e3 * s / steps
        print(f"trainer, {seeds} seed(s): {per_step:.3f} ms a step ({per_step / seeds:.3f} ms a seed-step)")


SECTIONS = {"measure": section_measure, "large": section_large, "resnet": section_resnet,
            "keras": section_keras, "train": section_train}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script on a CPU")
    parser.add_argument(
        "--n-large", type=int, nargs="+", default=[10_000, 30_000], help="N of the large section"
    )
    parser.add_argument("--keras-child", help=argparse.SUPPRESS)
    parser.add_argument("--n-small", type=int, default=961, help="N of the measure and keras sections")
    args = parser.parse_args()
    if args.keras_child:
        print(json.dumps(keras_child(args.keras_child, args.device, args.repeats, args.n_small)))
        return 0
    args.n_images, args.train_steps = 256, 1000
    if args.quick:
        args.n_small, args.n_large, args.n_images, args.train_steps, args.repeats = 120, [300], 12, 20, 1
    report: dict[str, Any] = {"device": args.device, "quick": args.quick}
    import torch

    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name()
    report["torch"] = torch.__version__
    for name in args.sections:
        started = time.perf_counter()
        try:
            SECTIONS[name](args, report)
        except Exception:  # a failed section is recorded; the others still run
            report.setdefault("errors", {})[name] = traceback.format_exc()
            print(f"section {name} failed:\n{traceback.format_exc()}")
        print(f"[{name}: {time.perf_counter() - started:.1f} s]", flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=2))
    return 1 if "errors" in report else 0


if __name__ == "__main__":
    sys.exit(main())
