#!/usr/bin/env bash
# The protobuf example programs of docs/examples/ working together, from the
# build tree (so also under the sanitizers): init, publish, receive with the
# output checked, a payload that is not a Reading (reported on stderr and
# skipped), and deduplication by id after a simulated crash.
#
#   pb_examples.sh BUILD/docs/examples
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$tmp/readings.json

fail() {
  echo "pb_examples: $*" >&2
  exit 1
}

# "text" sends plain text, to "display" only.
cat > "$cfg" <<'EOF'
{
  "sampler": {"out_queue": "readings"},
  "text": {"out_queue": "readings", "subscribers": ["display"]},
  "display": {"in_queue": "readings"},
  "counter": {"in_queue": "readings"},
  "queues": {
    "readings": {
      "path": "q",
      "max_db_size_bytes": 67108864,
      "subscribers": ["display", "counter"]
    }
  }
}
EOF
"$bin/pps-example-init" "$cfg"
"$bin/pps-example-pb-publisher" "$cfg" sampler 2 > "$tmp/pub.out"
printf '[sampler] sent reading 0\n[sampler] sent reading 1\n' |
  diff -u - "$tmp/pub.out" || fail "unexpected publisher output"
"$bin/pps-example-publisher" "$cfg" text 1 > /dev/null
"$bin/pps-example-pb-publisher" "$cfg" sampler 1 > /dev/null

# display: ids 1, 2 and 4 are Readings, 3 is text.
"$bin/pps-example-pb-subscriber" "$cfg" display 3 1000 \
  > "$tmp/display.out" 2> "$tmp/display.err" ||
  { cat "$tmp/display.err" >&2; fail "pb_subscriber failed"; }
of="of t-101 (TEMPERATURE, boiler room)"
rest="20.25 20.50 #calibrated #celsius, 4 raw bytes, GOOD"
diff -u - "$tmp/display.out" <<EOF || fail "unexpected subscriber output"
[display] id 1: reading 0 $of 20.00 $rest
[display] id 2: reading 1 $of 21.00 $rest
[display] id 4: reading 0 $of 20.00 $rest
EOF
grep -q '^\[display\] id 3: not a Reading ([0-9]* bytes); skipped$' \
  "$tmp/display.err" || { cat "$tmp/display.err" >&2;
                          fail "the text message was not reported"; }

# counter: ids 1, 2 and 4. The saved state says 1 and 2 were counted (sum
# 20 + 21) but the process died before consuming them.
echo "2 2 41" > "$tmp/state"
"$bin/pps-example-dedup" "$cfg" counter "$tmp/state" 200 > "$tmp/dedup.out"
diff -u - "$tmp/dedup.out" <<EOF || fail "unexpected dedup output"
id 1: duplicate, skipped
id 2: duplicate, skipped
id 4: counted
3 readings, sum 61.00, last id 4
EOF
[ "$(cat "$tmp/state")" = "4 3 61" ] || fail "state file: $(cat "$tmp/state")"
# Nothing left, nothing counted twice.
"$bin/pps-example-dedup" "$cfg" counter "$tmp/state" 0 > "$tmp/dedup.out"
echo "3 readings, sum 61.00, last id 4" | diff -u - "$tmp/dedup.out" ||
  fail "second dedup run"
echo "pb_examples: ok"
