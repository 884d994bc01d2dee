#!/usr/bin/env bash
# The GPU checks of a session, in one go, on a machine without network (docs/guides/gpus.md, docs/performance.md "On a GPU").
#   bash benchmarks/gpu_checks.sh tests bench reproduce populations seeds64
# Each part writes its log (and what it made) into $OUT (default gpu-out/); a part that fails
# does not stop the next. Wheels in .whl/ (what the machine lacks: dask, keras, ...) are
# installed into /tmp/site first.
set -u
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONPATH=$PWD
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)" | tee -a "$out/gpu.txt"

part() {  # part NAME COMMAND...: run it, log it, time it
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  timeout "${PART_TIMEOUT:-600}" "$@" > "$out/$name.log" 2>&1
  local status=$?
  tail -n 40 "$out/$name.log"
  echo "== $name: exit $status, $((SECONDS - start)) s" | tee -a "$out/times.txt"
}

for what in "$@"; do
  case $what in
    tests) part tests python3 -m pytest -m gpu tests/torch/test_torch_gpu.py -q -p no:cacheprovider ;;
    bench) part bench python3 benchmarks/bench_gpu.py --json "$out/bench_gpu.json" ${BENCH_ARGS:-} ;;
    reproduce)
      part reproduce python3 -m reference_tasks.cli reproduce --device cuda --out /tmp/runs-reproduce
      tar czf "$out/reproduce.tgz" -C /tmp/runs-reproduce --exclude='*.npz' --exclude=report-cache . ;;
    populations)
      part populations python3 -m reference_tasks.cli reproduce --device cuda --seeds 0 1 2 3 4 5 6 7 --probes hidden1 --batched \
        --out /tmp/runs-populations --no-report --quiet
      tar czf "$out/populations.tgz" -C /tmp/runs-populations --exclude='*.npz' . ;;
    seeds64)
      part seeds64 python3 -m reference_tasks.cli reproduce --device cuda --task xor --seeds $(seq 0 63) --probes hidden1 --lmn-samples 256 --batched \
        --out /tmp/runs-seeds64 --no-report --quiet
      tar czf "$out/seeds64.tgz" -C /tmp/runs-seeds64 --exclude='*.npz' --exclude=metrics.csv . ;;
    *) echo "unknown part $what" ;;
  esac
done
cat "$out/times.txt"
