# remove-subscriber takes a queue and a subscriber id, nothing else.
init_queue
exits "no id" ctl --config config.json remove-subscriber queues/demo
exits "three" ctl --config config.json remove-subscriber queues/demo a b
exits "no queue" ctl --config config.json remove-subscriber nowhere audit
