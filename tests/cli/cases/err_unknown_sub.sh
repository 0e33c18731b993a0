# receive as a subscriber the configuration does not have.
init_queue
ctl --config config.json receive nobody
