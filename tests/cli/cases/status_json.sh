# status --json: one line, keys sorted (checked by pps-cli-json), with the
# documented schema.
init_queue two
ctl --config config.json send pub a
ctl --config config.json send pub b
ctl --config config.json status --json >status.json
echo "exit $?"
[ "$(wc -l <status.json)" -eq 1 ] || echo "not one line"
jsonflat <status.json
