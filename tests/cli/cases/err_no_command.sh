# A command is required.
ctl --config config.json
