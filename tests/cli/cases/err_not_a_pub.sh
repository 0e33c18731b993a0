# send as a component that is no publisher.
init_queue
ctl --config config.json send sub hello
