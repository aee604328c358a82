#!/usr/bin/env bash
# The GPU check of an already-built CUDA build, in one run of under 10 minutes on an H100:
#   (a) every test of the build dir (ctest -j8, nothing excluded; GPU tests run, they skip only
#       where no device is usable),
#   (b) compute-sanitizer memcheck on the CUDA op tests (tensor_test_cuda_*, tensor_test_op_table),
#   (c) the GPU benchmarks: bench_cuda_gemm, bench_cuda_attention, bench_resnet (bf16 autocast
#       training step, batch 256) and bench_unet (SD UNet float16 forward, ControlNet bf16 training
#       step with checkpointing) in CUDA mode with few iterations,
#   (d) the PyTorch side-by-side scripts (bench/torch_resnet50.py, bench/diffusers_unet.py) when
#       torch with CUDA is importable (diffusers_unet.py also needs diffusers),
# and writes a short markdown report (GPU, driver, per step pass/fail/time, benchmark figures) to
# $CXR_GPU_SUITE_REPORT, else $OUT/gpu_suite_report.md when $OUT is set, else
# ./gpu_suite_report.md; every step's full output goes to a gpu_suite_logs/ folder beside it.
#
#   bench/gpu_suite.sh [BUILD_DIR]        (default build/release; run from the repository root)
#
# Every step has a time limit (seconds; environment variables override them): CXR_SUITE_CTEST_S
# (default 200), CXR_SUITE_MEMCHECK_S (100, the whole memcheck step; the executables run 4 at a
# time), CXR_SUITE_BENCH_S (150, the benchmarks together), CXR_SUITE_TORCH_S (110). When cuDNN or
# cuBLAS are not on the loader's path, the libraries are looked for under /usr/local/cuda*, the
# pip packages nvidia-* (python3 -c 'import nvidia...') and /opt/*/site-packages/nvidia, and
# LD_LIBRARY_PATH is extended. Exit status: 0 when every step that ran passed, 1 otherwise.
set -u -o pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build/release}" 2>/dev/null && pwd) || {
  echo "gpu_suite: build dir '${1:-build/release}' not found (give an already-built CUDA build)" >&2
  exit 2
}
if [[ -n "${CXR_GPU_SUITE_REPORT:-}" ]]; then
  report=$CXR_GPU_SUITE_REPORT
elif [[ -n "${OUT:-}" ]]; then
  report=$OUT/gpu_suite_report.md
else
  report=$PWD/gpu_suite_report.md
fi
mkdir -p "$(dirname "$report")"
logs=$(cd "$(dirname "$report")" && pwd)/gpu_suite_logs
mkdir -p "$logs"
ctest_s=${CXR_SUITE_CTEST_S:-200}
memcheck_s=${CXR_SUITE_MEMCHECK_S:-100}
bench_s=${CXR_SUITE_BENCH_S:-150}
torch_s=${CXR_SUITE_TORCH_S:-110}
suite_start=$SECONDS
failed=0
steps=()    # markdown table rows
figures=()  # markdown sections of benchmark output

# ---- libraries: cuDNN / cuBLAS / cudart where the loader does not find them ----
find_library_dirs() {
  local candidates=() d
  for d in /usr/local/cuda*/lib64 /usr/local/cuda*/lib /usr/local/cuda*/targets/*/lib \
           /opt/*/lib/python3*/site-packages/nvidia/*/lib /opt/*/site-packages/nvidia/*/lib; do
    [[ -d $d ]] && candidates+=("$d")
  done
  local py
  py=$(python3 -c 'import glob, os, nvidia
print("\n".join(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "lib"))))' \
       2>/dev/null) && while read -r d; do [[ -n $d ]] && candidates+=("$d"); done <<<"$py"
  for d in "${candidates[@]}"; do
    compgen -G "$d/libcudnn*.so*" >/dev/null || compgen -G "$d/libcublas*.so*" >/dev/null ||
      compgen -G "$d/libcudart*.so*" >/dev/null || continue
    echo "$d"
  done
}
probe=$(ls "$build"/tests/tensor_test_* 2>/dev/null | head -1)
lib_note="loader finds every library"
if [[ -n $probe ]] && ldd "$probe" | grep -q "not found"; then
  for d in $(find_library_dirs); do
    case ":${LD_LIBRARY_PATH:-}:" in *":$d:"*) ;; *) LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d ;; esac
  done
  export LD_LIBRARY_PATH
  missing=$(ldd "$probe" | grep "not found" | awk '{print $1}' | tr '\n' ' ')
  lib_note="LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}; still missing: ${missing:-none}"
fi

# run_step NAME LIMIT_S COMMAND...: runs the command with a time limit, its output in
# $logs/NAME.log, and adds a row to the report.
run_step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc
  echo "== $name (limit ${limit}s): $*" | tee -a "$logs/suite.log"
  timeout -k 10 "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local secs=$((SECONDS - t0)) verdict=pass
  if ((rc == 124 || rc == 137)); then
    verdict="FAIL (timed out after ${limit}s)"
  elif ((rc != 0)); then
    verdict="FAIL (exit $rc)"
  fi
  [[ $verdict == pass ]] || failed=1
  steps+=("| $name | $verdict | ${secs}s |")
  echo "   -> $verdict in ${secs}s" | tee -a "$logs/suite.log"
  return $rc
}

skip_step() {
  steps+=("| $1 | skipped: $2 | - |")
  echo "== $1 skipped: $2" | tee -a "$logs/suite.log"
}

# Adds the last lines of a step's log to the report's figures.
add_figures() {
  local name=$1 lines=${2:-25}
  [[ -f $logs/$name.log ]] || return 0
  figures+=("### $name" "" '```' "$(tail -n "$lines" "$logs/$name.log")" '```' "")
}

# ---- (a) every test ----
# --stop-time ends the tests still running 15 s before the step's limit, so ctest still prints its
# summary (they count as failed); the outer limit is the safety net.
run_step ctest "$ctest_s" ctest --test-dir "$build" -j8 --output-on-failure --timeout 120 \
  --stop-time "$(date -d "+$((ctest_s > 30 ? ctest_s - 15 : ctest_s)) seconds" +%H:%M:%S)"
ctest_summary=$(grep -E "tests passed|tests failed" "$logs/ctest.log" | tail -1)
ctest_failures=$(sed -n '/The following tests FAILED/,$p' "$logs/ctest.log" | head -40)

# ---- (b) memcheck of the CUDA op tests ----
sanitizer=$(command -v compute-sanitizer ||
  ls /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer \
     /opt/*/site-packages/nvidia/cuda_sanitizer_api/compute-sanitizer/compute-sanitizer \
     2>/dev/null | head -1)
if [[ -z $sanitizer ]]; then
  sanitizer=$(python3 -c 'import glob, nvidia
print(next(iter(sum((glob.glob(p + "/cuda_sanitizer_api/compute-sanitizer/compute-sanitizer")
                     for p in nvidia.__path__), [])), ""))' 2>/dev/null)
fi
memcheck_exes=$(ls "$build"/tests/tensor_test_cuda_* "$build"/tests/tensor_test_op_table 2>/dev/null)
if [[ -z $sanitizer ]]; then
  skip_step memcheck "compute-sanitizer not found"
elif [[ -z $memcheck_exes ]]; then
  skip_step memcheck "no tensor_test_cuda_* / tensor_test_op_table in $build/tests"
else
  # One log per executable; the step fails when any of them reports an error or fails.
  memcheck_one() {
    local exe=$1 log
    log=$2/memcheck_$(basename "$1").log
    # API errors are not memory errors: tensor_test_cuda_runtime provokes an out-of-memory on
    # purpose, which memcheck would otherwise count.
    timeout -k 5 "$3" "$4" --tool memcheck --report-api-errors no --error-exitcode 99 \
      --leak-check no "$exe" \
      --gtest_brief=1 >"$log" 2>&1
    local rc=$?
    echo "$(basename "$exe") exit $rc $( ((rc == 124)) && echo '(timed out)')"
    return $rc
  }
  export -f memcheck_one
  run_step memcheck "$memcheck_s" bash -c \
    'printf "%s\n" $1 | xargs -P 4 -I{} bash -c "memcheck_one {} $2 $3 $4"' _ \
    "$memcheck_exes" "$logs" "$((memcheck_s - 10))" "$sanitizer"
  grep -H "ERROR SUMMARY" "$logs"/memcheck_*.log | sed "s|^$logs/||" >>"$logs/memcheck.log"
  add_figures memcheck 40
fi

# ---- (c) GPU benchmarks ----
bench_dir=$build/bench
bench_start=$SECONDS
bench_left() { echo $((bench_s - (SECONDS - bench_start) > 10 ? bench_s - (SECONDS - bench_start) : 10)); }
for b in bench_cuda_gemm bench_cuda_attention; do
  if [[ -x $bench_dir/$b ]]; then
    run_step "$b" "$(( $(bench_left) < 40 ? $(bench_left) : 40 ))" "$bench_dir/$b" \
      --benchmark_min_time=0.05 --benchmark_counters_tabular=true
    add_figures "$b" 30
  else
    skip_step "$b" "$bench_dir/$b not built"
  fi
done
if [[ -x $bench_dir/bench_resnet ]]; then
  run_step bench_resnet_bf16 "$(( $(bench_left) < 40 ? $(bench_left) : 40 ))" \
    "$bench_dir/bench_resnet" --device=cuda --autocast=bf16 --iters=3 \
    --benchmark_counters_tabular=true
  add_figures bench_resnet_bf16 8
else
  skip_step bench_resnet "$bench_dir/bench_resnet not built"
fi
if [[ -x $bench_dir/bench_unet ]]; then
  run_step bench_unet_sd_fp16 "$(( $(bench_left) < 40 ? $(bench_left) : 40 ))" \
    "$bench_dir/bench_unet" --device=cuda --dtype=float16 --iters=5 \
    --benchmark_filter='tiny_forward|sd_forward' --benchmark_counters_tabular=true
  add_figures bench_unet_sd_fp16 8
  run_step bench_unet_controlnet_bf16 "$(bench_left)" \
    "$bench_dir/bench_unet" --device=cuda --autocast=bf16 --iters=2 \
    --benchmark_filter=controlnet --benchmark_counters_tabular=true
  add_figures bench_unet_controlnet_bf16 8
else
  skip_step bench_unet "$bench_dir/bench_unet not built"
fi

# ---- (d) PyTorch side by side ----
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  torch_start=$SECONDS
  torch_left() { echo $((torch_s - (SECONDS - torch_start) > 10 ? torch_s - (SECONDS - torch_start) : 10)); }
  run_step torch_resnet50_bf16 "$(( $(torch_left) < 50 ? $(torch_left) : 50 ))" \
    python3 "$repo/bench/torch_resnet50.py" --device cuda --amp bf16 --steps 3 \
    --bench "$bench_dir/bench_resnet"
  add_figures torch_resnet50_bf16 6
  if python3 -c 'import diffusers' 2>/dev/null; then
    run_step diffusers_unet_fp16 "$(( $(torch_left) < 35 ? $(torch_left) : 35 ))" \
      python3 "$repo/bench/diffusers_unet.py" --device cuda --dtype float16 --only sd_forward \
      --iters 5 --bench "$bench_dir/bench_unet"
    add_figures diffusers_unet_fp16 4
    run_step diffusers_controlnet_bf16 "$(torch_left)" \
      python3 "$repo/bench/diffusers_unet.py" --device cuda --amp bf16 --only cn_train_step \
      --iters 2 --bench "$bench_dir/bench_unet"
    add_figures diffusers_controlnet_bf16 4
  else
    skip_step diffusers_unet "diffusers is not importable"
  fi
else
  skip_step pytorch "torch with CUDA is not importable"
fi

# ---- report ----
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null ||
  echo "nvidia-smi unavailable")
{
  echo "# GPU suite report"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host $(hostname)"
  echo "- GPU (name, driver, memory): $gpu"
  echo "- commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown); build dir: $build"
  echo "- libraries: $lib_note"
  echo "- compute-sanitizer: ${sanitizer:-not found}"
  echo "- total time: $((SECONDS - suite_start))s; full logs: $logs"
  echo
  echo "| step | result | time |"
  echo "|---|---|---|"
  printf '%s\n' "${steps[@]}"
  echo
  echo "## ctest"
  echo
  echo "${ctest_summary:-no summary line (see ctest.log)}"
  if [[ -n $ctest_failures ]]; then
    echo
    echo '```'
    echo "$ctest_failures"
    echo '```'
  fi
  echo
  echo "## Benchmarks and checks (last lines of each log)"
  echo
  printf '%s\n' "${figures[@]}"
} >"$report"
echo "report: $report"
exit $failed
