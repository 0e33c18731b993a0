# A configuration that is not JSON: the message names file, line and column.
cp "$CLI_DIR/fixtures/bad-syntax.json" config.json
PERSIPUBSUB_CONFIG=config.json ctl status
