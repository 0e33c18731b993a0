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
# Without lmdb.pc (a machine lacking liblmdb-dev), find_package(persipubsub
# QUIET) reports "not found" and the consumer's configure goes on.
mkdir -p "$tmp/quiet" "$tmp/no-pc"
cat >"$tmp/quiet/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(quiet_consumer C)
find_package(persipubsub QUIET)
message(STATUS "persipubsub_FOUND=${persipubsub_FOUND}")
CMAKE
out=$(env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$tmp/no-pc" \
  cmake -S "$tmp/quiet" -B "$tmp/quiet-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" 2>&1) || {
  echo "find_package(persipubsub QUIET) without lmdb.pc failed the configure:" >&2
  echo "$out" >&2
  exit 1
}
grep -q "persipubsub_FOUND=0\|persipubsub_FOUND=FALSE" <<<"$out" || {
  echo "find_package(persipubsub QUIET) without lmdb.pc did not say not found:" >&2
  echo "$out" >&2
  exit 1
}
