# A consistent queue: check and check --repair print nothing and exit 0.
init_queue two
ctl --config config.json send pub a
ctl --config config.json check
echo "check: $?"
ctl --config config.json check --repair --queue alpha
echo "check --repair: $?"
