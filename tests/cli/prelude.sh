# Helpers for the cases of tests/cli/cases/ (sourced by run.sh in the
# case's own temporary directory, which is the current directory).

# The tool under test.
ctl() {
  "$PPS_CTL" "$@"
}

# Ends the case as skipped, for a precondition of the machine (a program
# the case needs), never of the tool: run.sh exits 77 and ctest reports the
# case as "Skipped" (scripts/run test fails on that unless PPS_ALLOW_SKIPS=1).
skip() {
  printf '%s\n' "$*" >"$PPS_CLI_SKIP_FILE"
  exit 77
}

# A setup step: must succeed; its output is not part of the case's.
setup() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "setup failed: $*: $out" >&2
    exit 99
  fi
}

# Copies the fixture configuration NAME (tests/cli/fixtures/NAME.json) to
# ./config.json.
use_config() {
  cp "$CLI_DIR/fixtures/$1.json" config.json
}

# ./config.json from fixture NAME (default: demo), initialized.
init_queue() {
  use_config "${1:-demo}"
  setup ctl --config config.json init
}

damage() {
  "$PPS_CLI_DAMAGE" "$@"
}

# Checks and flattens the JSON on stdin (see jsonflat.c).
jsonflat() {
  "$PPS_CLI_JSON"
}

# Runs a command whose failure is part of the case (the case runs under
# set -e) and prints "LABEL: STATUS" on stdout.
exits() {
  local label=$1 status=0
  shift
  "$@" || status=$?
  echo "$label: $status"
}
