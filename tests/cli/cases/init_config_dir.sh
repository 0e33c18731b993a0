# Queue paths are relative to the configuration's directory, and the
# output names them as resolved.
mkdir etc
cp "$CLI_DIR/fixtures/two.json" etc/pps.json
ctl --config etc/pps.json init
[ -d etc/queues/a ] && [ -d etc/queues/b ] || echo "queues not under etc/"
