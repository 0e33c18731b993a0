#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang and runs each for a
# bounded time. Standalone: compiles the needed src/*.c files directly, so it
# works whatever compiler the main build uses.
#
#   bash tests/fuzz/run.sh [SECONDS_PER_TARGET]     (default 30)
#
# Targets: fuzz_config (the config parser from any bytes) and fuzz_payload
# (arbitrary payload sizes and bytes through send and receive). New inputs
# go to $PPS_FUZZ_BUILD/corpus_* (default build-fuzz/ at the top of the
# tree); the checked-in seed corpora are only read. A crash, leak or failed
# property stops the run with a non-zero status and leaves the reproducer
# (crash-*, leak-*) in the build directory: replay it with
#   build-fuzz/fuzz_config build-fuzz/crash-...
# Without clang (or the .pc files of LMDB and jansson) the script says so
# and exits 77, "skipped": scripts/run installs clang and fails on a skip
# unless PPS_ALLOW_SKIPS=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-30}
case "$secs" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

if ! command -v clang >/dev/null 2>&1; then
  echo "clang not found: fuzzing skipped (Debian: clang libclang-rt-dev)"
  exit 77
fi
for pc in lmdb jansson; do
  if ! pkg-config --exists "$pc"; then
    echo "pkg-config cannot find $pc: fuzzing skipped"
    exit 77
  fi
done

out=${PPS_FUZZ_BUILD:-$root/build-fuzz}
mkdir -p "$out"

cflags=(-g -O1 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_GNU_SOURCE -DPPS_VERSION_STRING='"fuzz"'
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer -I"$root/include" -I"$root/src")
read -r -a deps <<<"$(pkg-config --cflags --libs lmdb jansson)"

# The library without the protobuf helpers (they need protobuf-c).
lib_srcs=()
for f in "$root"/src/*.c; do
  case "$(basename "$f")" in
    protobuf.c) ;;
    *) lib_srcs+=("$f") ;;
  esac
done

echo "== building fuzz targets in $out"
# The configuration is src/config*.c (one file per part since it was split).
clang "${cflags[@]}" "$here/fuzz_config.c" "$root"/src/config*.c \
  "$root/src/error.c" "${deps[@]}" -o "$out/fuzz_config"
clang "${cflags[@]}" "$here/fuzz_payload.c" "${lib_srcs[@]}" "${deps[@]}" \
  -lpthread -o "$out/fuzz_payload"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run() { # TARGET SEED_CORPUS [EXTRA LIBFUZZER ARGS...]
  local target=$1 seeds=$2; shift 2
  local corpus="$out/corpus_${target#fuzz_}" log="$out/$target.log"
  mkdir -p "$corpus"
  echo "== $target for ${secs}s (log: $log)"
  if ! (cd "$out" && "./$target" -max_total_time="$secs" -timeout=20 \
          -rss_limit_mb=2048 -print_final_stats=1 "$@" "$corpus" "$seeds") \
          >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "== $target FAILED: the reproducer is in $out"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' \
    "$log" || true
}

run fuzz_config "$here/corpus_config" -dict="$here/config.dict" -max_len=8192
run fuzz_payload "$here/corpus_payload" -max_len=65536
echo "== fuzzing: no crash, no leak, properties held"
