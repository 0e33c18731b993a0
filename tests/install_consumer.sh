#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds a small
# program against it twice: with CMake's find_package and with pkg-config.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)/consumer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" \
  "$tmp/cmake-build/consumer"
libdir=$(dirname "$(find "$tmp/prefix" -name persipubsub.pc | head -n 1)")
export PKG_CONFIG_PATH="$libdir"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror "$src/main.c" -o "$tmp/pc-consumer" \
  $(pkg-config --cflags --libs persipubsub)
LD_LIBRARY_PATH="$libdir/.." "$tmp/pc-consumer"
# Static linking through pkg-config --static pulls in lmdb and jansson.
cc -std=c11 -Wall -Werror "$src/main.c" -o "$tmp/static-consumer" \
  $(pkg-config --cflags persipubsub) "$libdir/../libpersipubsub.a" \
  $(pkg-config --static --libs-only-l persipubsub | sed 's/-lpersipubsub//')
"$tmp/static-consumer"
