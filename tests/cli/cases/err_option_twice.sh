# An option with a value given twice is a usage error (exit 2, one line on
# stderr), never a silent choice of the last; nothing is done. Flags may
# repeat. Every command's status is printed.
init_queue two
ctl --config config.json send tpub kept
u() { exits "$*" ctl "$@"; }
u --config config.json clear --queue alpha --queue beta
u --config config.json clear --queue=alpha --queue=alpha
u --config config.json prune --queue alpha --queue beta
u --config config.json init --queue alpha --queue beta
u --config config.json status --queue alpha --queue beta
u --config config.json check --queue alpha --queue beta
u --config config.json receive tsub --count 1 --count 2
u --config config.json receive tsub --timeout 0 --timeout=-1
u --config config.json --config other.json status
u --config config.json status --config other.json
u status --config config.json --config=other.json
echo "== a flag twice is no error; the message is still there"
ctl --config config.json status --json --json --queue beta | jsonflat |
  grep '^\.queues\.0\.messages '
ctl --config config.json receive tsub --count 1 --raw
echo
