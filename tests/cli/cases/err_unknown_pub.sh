# send as a publisher the configuration does not have.
init_queue
ctl --config config.json send pub2 hello
