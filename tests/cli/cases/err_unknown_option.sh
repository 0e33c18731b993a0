# An unknown option of a command.
init_queue
ctl --config config.json status --frob
