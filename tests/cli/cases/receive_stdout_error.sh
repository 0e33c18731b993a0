# A message that cannot be written to stdout is not consumed.
init_queue
ctl --config config.json send pub kept
status=0
ctl --config config.json receive sub >/dev/full || status=$?
echo "exit $status"
ctl --config config.json receive sub
