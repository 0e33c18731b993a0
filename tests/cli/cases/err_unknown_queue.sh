# --queue naming no queue of the configuration.
init_queue
ctl --config config.json prune --queue nope
