#!/usr/bin/env bash
# `cmake --install` puts libcnn, cnn.h, cnn.pc and the cnn program under a
# prefix; the example in examples/ then builds against it through pkg-config
# (shared and static) and runs.
set -euo pipefail
cnn_bin=$1 src=$2 build=$3
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/cnn.h bin/cnn; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
libdir=$(dirname "$(find "$prefix" -name cnn.pc | head -n1)")/..
for f in libcnn.a libcnn.so; do
  [ -e "$libdir/$f" ] || { echo "FAIL: $f not installed in $libdir"; exit 1; }
done
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# a sanitizer build's library needs the sanitizer runtime first in the link
san=""
grep -q "^CNN_SANITIZE:BOOL=ON" "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"
"$prefix/bin/cnn" --version >/dev/null
cc -std=c11 $san "$src/examples/xor_conv.c" $(pkg-config --cflags --libs cnn) \
   -Wl,-rpath,"$libdir" -o "$prefix/xor_shared"
"$prefix/xor_shared"
cc -std=c11 $san "$src/examples/xor_conv.c" $(pkg-config --cflags cnn) \
   "$libdir/libcnn.a" $(pkg-config --static --libs cnn | sed 's/-lcnn\b//') \
   -o "$prefix/xor_static"
"$prefix/xor_static"
echo "PASS: installed library, header, pkg-config file and program work"
