#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. install the Debian packages (tests/deps.sh) and fetch MNIST (data/fetch.sh)
#   2. build (Release) and run every test with ctest; build again with MPI
#      (-DCNN_MPI=ON) and run the MPI tests against the first build
#   3. a short training run (and eval, predict, info) under valgrind memcheck
#   4. build again with AddressSanitizer + UndefinedBehaviorSanitizer and run
#      the tests again (the slow full-data integration tests run only once)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
bash tests/deps.sh
bash data/fetch.sh all

echo "== Release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== MPI build: mpirun -np 1..4 against the build above, resume, failures"
cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DCNN_MPI=ON -DCNN_BENCH=OFF \
      -DCNN_MPI_REFERENCE="$PWD/build/cnn"
cmake --build build-mpi -j"$jobs" --target cnn
ctest --test-dir build-mpi --output-on-failure -L mpi

echo "== valgrind memcheck: train, eval, predict and info on a small slice"
# a portable build: valgrind cannot run AVX-512 instructions
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNN_NATIVE=OFF \
      -DCNN_TESTS=OFF -DCNN_BENCH=OFF
cmake --build build-valgrind -j"$jobs" --target cnn
bash tests/valgrind.sh build-valgrind/cnn .

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNN_SANITIZE=ON -DCNN_BENCH=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
