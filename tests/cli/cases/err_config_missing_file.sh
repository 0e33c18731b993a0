# A configuration file that does not exist.
ctl --config nothere.json status
