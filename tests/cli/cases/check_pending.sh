# A subscriber pending on a message that does not exist, in one of two
# queues: check --queue sees only its queue.
init_queue two
ctl --config config.json send tpub x
setup damage queues/b add-pending tsub 42
ctl --config config.json check --queue alpha
echo "check alpha: $?"
ctl --config config.json check
echo "check: $?"
ctl --config config.json check --repair
echo "check --repair: $?"
ctl --config config.json check
echo "check again: $?"
