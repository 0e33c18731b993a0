# The tool's help: --help, -h and "help" print the same text on stdout.
ctl --help
ctl -h | cmp - <(ctl --help) || echo "-h differs"
ctl help | cmp - <(ctl --help) || echo "help differs"
