#!/usr/bin/env bash
# run.sh SECONDS [TARGET...]: replays fuzz/regressions/<target>/, then fuzzes each target for
# SECONDS (make fuzz, make fuzz-ci; docs/fuzzing.md). Expects the binaries in build-fuzz/bin/.
#
# The committed seeds (fuzz/corpus/<target>/) are read, never written: libFuzzer adds new inputs
# to the first corpus directory it is given, build-fuzz/corpus/<target>/ (gitignored), which
# persists between runs. Crashes go to build-fuzz/artifacts/<target>/, the full log to
# build-fuzz/logs/<target>.log. A target that fails a regression input is not fuzzed (it would
# only find that bug again); the others still run. Exits 1 if any target failed a regression,
# crashed, leaked, timed out or ran out of memory, after printing what and where.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
((${#targets[@]})) || targets=(fuzz_http_session fuzz_chan_select fuzz_reactor_buffer)

# max_len: fuzz_http_session: 8 config bytes, up to 15 piece lengths and a few KiB of requests;
# fuzz_chan_select: 2 bytes and 64 ops of 3 bytes (more is ignored); fuzz_reactor_buffer: a few
# hundred ops.
declare -A max_len=([fuzz_http_session]=4096 [fuzz_chan_select]=194 [fuzz_reactor_buffer]=1024)
# fuzz_chan_select starts at its full length (-len_control=0): its inputs are short anyway, and
# a 60 s run otherwise stays below 30 bytes (9 ops), which finds a quarter fewer features.
declare -A extra=([fuzz_http_session]="-dict=fuzz/http.dict" [fuzz_chan_select]="-len_control=0")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p build-fuzz/logs
failed=()
for t in "${targets[@]}"; do
  bin=build-fuzz/bin/$t
  log=build-fuzz/logs/$t.log
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  # 1. Regressions: every input that ever crashed a target must now pass.
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if ((${#regressions[@]})); then
    if ! "$bin" -timeout=30 "${regressions[@]}" >"$log.regressions" 2>&1; then
      echo "fuzz: $t fails a regression input (fuzz/regressions/$t/):" >&2
      grep -E "^Running:|invariant|^  |ERROR|SUMMARY|#[0-9]+ 0x" "$log.regressions" | head -40 >&2
      failed+=("$t (regression)")
      continue
    fi
    echo "fuzz: $t: ${#regressions[@]} regression inputs pass"
  fi
  # 2. Fuzz.
  # shellcheck disable=SC2086
  if ! "$bin" -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=30 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t/" \
      ${extra[$t]:-} "build-fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz: $t crashed; input in build-fuzz/artifacts/$t/, log $log:" >&2
    tail -60 "$log" >&2
    failed+=("$t")
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 |
    sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//')
  echo "fuzz: $t: ${seconds} s, ${execs} execs (${rate}/s); ${done_line}"
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
