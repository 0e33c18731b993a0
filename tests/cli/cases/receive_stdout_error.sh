# A message that cannot be written to stdout is not consumed.
init_queue
ctl --config config.json send pub kept
ctl --config config.json receive sub >/dev/full
echo "exit $?"
ctl --config config.json receive sub
