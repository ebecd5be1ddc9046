#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz for a bounded time each, starting from their committed
# seed corpora:
#
#   bash tests/fuzz.sh [SECONDS [TARGET...]]    default: 60 s for every target
#
# Builds the targets first in the sanitizer tree (etc/bootstrap.sh --sanitize: clang-15, ASan,
# UBSan), then runs as many targets at once as there are cores. Inputs the fuzzer finds go to a
# scratch folder, never into the committed corpus. A crash, a sanitizer report, a leak, a broken
# invariant or an input that runs over 10 s fails the run: the target's log and the input that
# did it (hex dump and base64) are printed. Replay one with `build-sanitize/tests/fuzz/fuzz_NAME FILE`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AQUEDUCT_SANITIZE_BUILD_DIR:-$repo/build-sanitize}
cd "$repo"

seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a number, not '$seconds'" >&2; exit 2; }
(($# > 0)) && shift
targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

bash etc/bootstrap.sh --sanitize --target aq_fuzz_targets
source tests/sanitizer_options.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/aq-fuzz-XXXXXX")

run_target() {
  local name=$1 dir=$work/$1
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$dir/")
  [[ -f tests/fuzz/$name.dict ]] && args+=(-dict="tests/fuzz/$name.dict")
  mkdir -p "$dir/found"
  local status=0
  "$build/tests/fuzz/fuzz_$name" "${args[@]}" "$dir/found" "tests/fuzz/corpus/$name" >"$dir/log" 2>&1 || status=$?
  echo "$status" >"$dir/status"
}

# As many targets at a time as there are cores: each gets its seconds on a core of its own.
jobs=$(nproc)
started=$(date +%s)
for name in "${targets[@]}"; do
  [[ -x $build/tests/fuzz/fuzz_$name ]] || { echo "fuzz.sh: no target fuzz_$name in $build" >&2; exit 2; }
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  run_target "$name" &
done
wait

failed=0
for name in "${targets[@]}"; do
  dir=$work/$name
  status=$(cat "$dir/status")
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$dir/log")
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 || true)
  found=$(find "$dir/found" -type f | wc -l)
  if [[ $status == 0 ]]; then
    echo "fuzz_$name: ok, ${runs:-?} runs in ${seconds} s, ${cov:-cov: ?}, $found new inputs"
    continue
  fi
  failed=$((failed + 1))
  echo "fuzz_$name: FAILED (exit status $status)"
  echo "---- last lines of its log"
  tail -n 60 "$dir/log"
  for input in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
    [[ -f $input ]] || continue
    echo "---- input $(basename "$input") ($(stat -c %s "$input") bytes), hex:"
    od -A x -t x1z -v "$input" | head -n 64
    echo "---- the same input, base64 (base64 -d > input; $build/tests/fuzz/fuzz_$name input):"
    base64 -w 0 "$input"
    echo
  done
done

echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $(($(date +%s) - started)) s in all"
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
if ((failed)); then
  echo "fuzz: $failed target(s) failed; logs and inputs kept in $work" >&2
  exit 1
fi
rm -rf "$work"
