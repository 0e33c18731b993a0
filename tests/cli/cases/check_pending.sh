# A subscriber pending on a message that does not exist, in one of two
# queues: check --queue sees only its queue.
init_queue two
ctl --config config.json send tpub x
setup damage queues/b add-pending tsub 42
exits "check alpha" ctl --config config.json check --queue alpha
exits "check" ctl --config config.json check
exits "check --repair" ctl --config config.json check --repair
exits "check again" ctl --config config.json check
