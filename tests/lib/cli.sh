# tests/lib/cli.sh — what the command-line tests (tests/cli_*.sh,
# tests/mpi_train.sh) share. Sourced right after CNN=$1; SRC=$2; BUILD=$3:
# it sets fail=0 (a failed check sets it to 1; the test exits with it) and
# moves into a fresh temporary folder $T, removed when the test exits.
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

# expect CODE PATTERN -- COMMAND...: COMMAND exits with CODE and its output
# (stdout and stderr, left in out.txt) matches the extended regex PATTERN;
# else it says what it got and sets fail=1.
expect() {
    local code=$1 pat=$2; shift 3
    "$@" >out.txt 2>&1; local rc=$?
    if [ "$rc" != "$code" ]; then
        echo "FAIL: '$*' exited $rc, expected $code"; sed 's/^/    /' out.txt | head -20; fail=1
    elif ! grep -Eq -- "$pat" out.txt; then
        echo "FAIL: '$*' output lacks /$pat/"; sed 's/^/    /' out.txt | head -20; fail=1
    fi
}

# syn_data NTRAIN NTEST [TEST_SIZE [gz]]: the synthetic data set of
# tests/syn_data.py (ten classes of bright squares) in ./syn
syn_data() {
    python3 "$SRC/tests/syn_data.py" syn "$@" || { echo "FAIL: could not write the synthetic data"; exit 1; }
}

# need_data DIR NAME FILE: skip the test (exit 77) unless DIR holds FILE
# (possibly gzipped): a data set data/fetch.sh downloads.
need_data() {
    ls "$1/$3"* > /dev/null 2>&1 || { echo "SKIP: no $2 in $1 (run data/fetch.sh)"; exit 77; }
}

# need_chromium: skip the test (exit 77) without Chromium, fail without
# Node.js; sets CHROMIUM (its path; the environment may give it) and SHOTS,
# the folder the screenshots go to.
need_chromium() {
    CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
    if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
        echo "SKIP: Chromium is not installed (Debian: apt-get install chromium; tests/deps.sh installs it)"; exit 77
    fi
    command -v node > /dev/null || { echo "FAIL: Chromium is here but Node.js is not (tests/deps.sh installs it)"; exit 1; }
    SHOTS=$BUILD/report-screenshots
    mkdir -p "$SHOTS"
}
