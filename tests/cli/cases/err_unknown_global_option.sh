# An unknown option before the command.
init_queue
ctl --frob=1 --config config.json status
