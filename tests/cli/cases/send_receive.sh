# send from the command line and from stdin; receive prints one line per
# message (id, UTC publish time, escaped payload) and consumes it.
init_queue
ctl --config config.json send pub hello
ctl --config config.json send pub "two words"
printf 'tab\there\nback\\slash\r\001\177\200\377' |
  ctl --config config.json send pub
ctl --config config.json send pub ''
ctl --config config.json send pub -- --dash
echo "== sub"
ctl --config config.json receive sub
echo "== sub again: nothing left"
ctl --config config.json receive sub
echo "== audit, one"
ctl --config config.json receive audit --count 1
echo "== audit, the rest"
ctl --config config.json receive audit
