# remove-subscriber refuses a subscriber the configuration still lists:
# the next init would register it again. Nothing changes.
init_queue
ctl --config config.json send pub kept
ctl --config config.json remove-subscriber queues/demo audit
