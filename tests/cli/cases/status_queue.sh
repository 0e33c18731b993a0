# --queue takes a key, the path as configured, or another path to the same
# directory.
init_queue two
ctl --config config.json status --json --queue beta | jsonflat | grep '\.key '
ctl --config config.json status --json --queue queues/a | jsonflat | grep '\.key '
ctl --config config.json status --json --queue ./queues/b/ | jsonflat | grep '\.key '
ctl --config config.json status --json --queue "$PWD/queues/a" | jsonflat | grep '\.key '
