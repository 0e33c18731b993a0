# help for a command that does not exist.
ctl help frob
