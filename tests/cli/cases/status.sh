# The status table: one block per queue, a row per subscriber.
init_queue two
ctl --config config.json send pub a
ctl --config config.json send pub b
ctl --config config.json send tpub c
ctl --config config.json receive sub --count 1 >/dev/null
ctl --config config.json status
