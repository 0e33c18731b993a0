#!/usr/bin/env bash
# Static analysis of the library: cppcheck over src/ and cli/, clang-tidy
# (with the checked-in .clang-tidy) over src/*.c. Exit status: 0 clean,
# 1 findings, 77 a tool that was asked for is not installed (ctest reports
# a skip: one tool missing must not pass as if it had run).
#
#   bash tests/static_analysis.sh [--only cppcheck|clang-tidy] [BUILD_DIR]
#
# BUILD_DIR (default build-tidy/) receives a configure-only CMake tree for
# its compile_commands.json; nothing is compiled.
set -uo pipefail

only=
if [ "${1:-}" = --only ]; then
  only=$2
  shift 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-tidy}
cd "$root"

have_cppcheck=0
have_tidy=0
command -v cppcheck >/dev/null 2>&1 && have_cppcheck=1
command -v clang-tidy >/dev/null 2>&1 && have_tidy=1
case "$only" in
  '') ;;
  cppcheck) have_tidy=-1 ;;
  clang-tidy) have_cppcheck=-1 ;;
  *) echo "usage: $0 [--only cppcheck|clang-tidy] [BUILD_DIR]" >&2; exit 2 ;;
esac
if [ $have_cppcheck = 0 ] || [ $have_tidy = 0 ]; then
  [ $have_cppcheck = 0 ] && echo "cppcheck is not installed (Debian: cppcheck)"
  [ $have_tidy = 0 ] && echo "clang-tidy is not installed (Debian: clang-tidy)"
  echo "static analysis skipped"
  exit 77
fi

status=0
if [ $have_cppcheck = 1 ]; then
  echo "== cppcheck ($(cppcheck --version))"
  if ! cppcheck --enable=warning,performance,portability --error-exitcode=1 \
      --inline-suppr --quiet -I include -I src src cli; then
    status=1
  fi
fi

if [ $have_tidy = 1 ]; then
  echo "== clang-tidy ($(clang-tidy --version | grep -o 'version [0-9.]*'))"
  if ! cmake -S "$root" -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
      -DPPS_SANITIZE= -DPPS_BUILD_TESTS=OFF -DPPS_BUILD_EXAMPLES=OFF \
      -DPPS_BUILD_BENCH=OFF >"$build.log" 2>&1; then
    cat "$build.log"
    echo "cmake failed: no compile_commands.json for clang-tidy"
    exit 1
  fi
  # One file per clang-tidy process: clang-tidy 14 given several files at
  # once carries analyzer state from one translation unit to the next and
  # reports false "uninitialized va_list" warnings.
  if ! printf '%s\n' src/*.c | xargs -P "$(nproc 2>/dev/null || echo 2)" \
      -n 1 clang-tidy -p "$build" --quiet --warnings-as-errors='*' \
      2> >(grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' >&2); then
    status=1
  fi
fi

if [ $status = 0 ]; then
  echo "== static analysis: clean"
else
  echo "== static analysis: findings above"
fi
exit $status
