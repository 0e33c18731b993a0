# A configuration with a bad value: the message names the file and the
# JSON path; nothing is created.
cp "$CLI_DIR/fixtures/bad-value.json" config.json
ctl --config config.json init
st=$?
[ ! -e queues ] || echo "queues were created" >&2
exit $st
