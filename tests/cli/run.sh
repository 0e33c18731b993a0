#!/usr/bin/env bash
# Runs one golden-file case of the persipubsub-ctl tests:
#
#   run.sh NAME
#
# The case is tests/cli/cases/NAME.sh, run by bash in a fresh temporary
# directory with the helpers of tests/cli/prelude.sh, under set -e -o
# pipefail: every command must succeed, or the case ends there with that
# command's status. A command whose failure is expected is tested by the
# case itself: "exits LABEL COMMAND..." (prelude.sh) prints "LABEL: STATUS",
# or "COMMAND || ...". What the case prints is compared with the files
# beside it:
#
#   NAME.exit          the expected exit status of the case (absent: 0)
#   NAME.stdout.exact  the expected stdout, byte for byte, or
#   NAME.stdout.glob   a bash pattern for it (* also matches newlines);
#                      absent: stdout must be empty
#   NAME.stderr.exact  likewise for stderr
#   NAME.stderr.glob
#
# The temporary directory's path is replaced by @TMP@ before comparing.
# A case that calls "skip REASON" (prelude.sh) is neither compared nor
# passed: run.sh prints "SKIPPED NAME: REASON" and exits 77 (ctest's
# SKIP_RETURN_CODE).
# Environment: PPS_CTL (the persipubsub-ctl binary), PPS_CLI_DAMAGE and
# PPS_CLI_JSON (the helpers built from damage.c and jsonflat.c).
set -u
here=$(cd "$(dirname "$0")" && pwd)
name=$1
script=$here/cases/$name.sh
if [ ! -f "$script" ]; then
  echo "run.sh: no case $script" >&2
  exit 2
fi
root=$(mktemp -d "${TMPDIR:-/tmp}/pps-cli.XXXXXX")
trap 'chmod -R u+rwx "$root" 2>/dev/null; rm -rf "$root"' EXIT
mkdir "$root/work"
export PPS_CLI_SKIP_FILE=$root/skip
(
  cd "$root/work" || exit 99
  unset PERSIPUBSUB_CONFIG
  export CLI_DIR=$here
  export LC_ALL=C
  # shellcheck source=prelude.sh
  . "$here/prelude.sh"
  # Every command of the case must succeed unless the case tests its
  # status itself (in an if, or with || or &&): the first that fails ends
  # the case with its status, which then differs from the expected one.
  set -e -o pipefail
  # shellcheck disable=SC1090
  . "$script"
) >"$root/stdout" 2>"$root/stderr" </dev/null
status=$?

if [ "$status" = 77 ] && [ -s "$PPS_CLI_SKIP_FILE" ]; then
  echo "SKIPPED $name: $(cat "$PPS_CLI_SKIP_FILE")"
  exit 77
fi

failed=0
expected_status=0
if [ -f "$script.exit" ]; then
  expected_status=$(tr -d ' \n' <"$script.exit")
fi
if [ "$status" != "$expected_status" ]; then
  echo "FAIL $name: exit status $status, expected $expected_status"
  failed=1
fi

# Prints a file with @TMP@ for the temporary directory, keeping a missing
# final newline visible to the comparison.
actual() {
  local text
  text=$(cat "$1"; printf x)
  text=${text%x}
  printf '%s' "${text//"$root"/@TMP@}"
}

compare() { # STREAM
  local stream=$1 exp text pattern
  text=$(actual "$root/$stream"; printf x)
  text=${text%x}
  if [ -f "$script.$stream.exact" ]; then
    exp=$(cat "$script.$stream.exact"; printf x)
    exp=${exp%x}
    if [ "$text" != "$exp" ]; then
      echo "FAIL $name: $stream differs from $name.sh.$stream.exact:"
      diff -u "$script.$stream.exact" <(printf '%s' "$text")
      failed=1
    fi
  elif [ -f "$script.$stream.glob" ]; then
    pattern=$(cat "$script.$stream.glob"; printf x)
    pattern=${pattern%x}
    # shellcheck disable=SC2053
    if [[ $text != $pattern ]]; then
      echo "FAIL $name: $stream does not match $name.sh.$stream.glob:"
      echo "--- pattern"
      printf '%s' "$pattern"
      echo "--- $stream"
      printf '%s' "$text"
      failed=1
    fi
  elif [ -s "$root/$stream" ]; then
    echo "FAIL $name: unexpected $stream:"
    printf '%s' "$text"
    failed=1
  fi
}
compare stdout
compare stderr
if [ "$failed" = 0 ]; then
  echo "ok $name"
fi
exit "$failed"
