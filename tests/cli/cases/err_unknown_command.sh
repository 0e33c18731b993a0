# An unknown command is a usage error.
use_config demo
ctl --config config.json frob
