#!/bin/bash
# coverage.sh — which branches of the source a fuzz target's committed corpus
# takes, by clang's source-based coverage: the target is built a second time
# with -fprofile-instr-generate -fcoverage-mapping (in build-fuzz-cov), the
# corpus replayed once (-runs=0), and llvm-cov prints a table per file and
# every branch direction no input took. A long run's edge count says whether
# the fuzzer still finds something; this says what is left to find.
#
#   bash tests/fuzz/coverage.sh checkpoint src/cli/checkpoint.c src/cli/train_options.c
#   bash tests/fuzz/coverage.sh cli src/cli/args.c
#
# Extra corpus directories (a run's scratch corpus) go in CNN_FUZZ_DIRS.
set -euo pipefail
usage="usage: $0 TARGET [SOURCE_FILE...]  (TARGET: checkpoint, cli, idx, image, ...)"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
case "$1" in -h | --help) echo "$usage"; exit 0 ;; esac
target=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$root/tests/fuzz/corpus/$target
[ -d "$corpus" ] || { echo "$0: no corpus $corpus" >&2; exit 2; }
for f in "$@"; do [ -f "$root/$f" ] || { echo "$0: no source file $f" >&2; exit 2; }; done
build=${CNN_FUZZ_COV_BUILD:-$root/build-fuzz-cov}
cov=$(mktemp -d)
trap 'rm -rf "$cov"' EXIT

if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCNN_FUZZ=ON -DCNN_TESTS=OFF -DCNN_BENCH=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping" \
        -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "fuzz_$target" >/dev/null
bin=$build/tests/fuzz/fuzz_$target

# one replay of every input; -max_len as large as the biggest seed
LLVM_PROFILE_FILE=$cov/replay.profraw "$bin" -runs=0 -rss_limit_mb=2048 -max_len=1048576 \
    "$corpus" ${CNN_FUZZ_DIRS:-} 2>&1 | grep -o "INITED cov: [0-9]* ft: [0-9]*" || true
llvm-profdata merge -o "$cov/replay.profdata" "$cov/replay.profraw"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$root/src")
(cd "$root" && llvm-cov report "$bin" -instr-profile="$cov/replay.profdata" "${files[@]}")
[ $# -gt 0 ] || exit 0
echo
echo "Branch directions no input took, on the lines some input reached (line:column):"
for f in "$@"; do
    (cd "$root" && llvm-cov show "$bin" -instr-profile="$cov/replay.profdata" "$f" --show-branches=count \
        -use-color=false) |
        awk -v f="$f" 'match($0, /^ *[0-9]+\|[^|]*\|/) { n = $0 + 0; line[n] = substr($0, RLENGTH + 1) }
                       /Branch \(/ && /(True: 0,|False: 0\])/ && !/True: 0, False: 0/ {
                           split($0, b, /[(:)]/); l = b[2] + 0
                           sub(/^ *\| *Branch /, ""); sub(/^ +/, "", line[l])
                           printf "  %s:%s   %s\n", f, $0, line[l] }'
done
