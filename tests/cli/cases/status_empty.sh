# An empty queue: no age ("-"), and --queue by key.
init_queue
ctl --config config.json status --queue queues/demo
