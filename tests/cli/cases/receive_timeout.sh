# Without --count, receive exits 0 when nothing is pending; with --count it
# is a failure (exit 1) if fewer messages came within --timeout.
init_queue
exits "no count" ctl --config config.json receive sub --timeout 50
exits "count 1" ctl --config config.json receive sub --count 1 --timeout 50
ctl --config config.json send pub one
exits "count 2" ctl --config config.json receive sub --count 2 --timeout=50
