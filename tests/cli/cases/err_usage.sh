# Bad arguments of commands: each is exit 2 with one line on stderr, and
# nothing is done.
init_queue
u() { exits "$*" ctl --config config.json "$@"; }
u send
u send pub a b
u receive
u receive sub other
u receive sub --count 0
u receive sub --count x
u receive sub --count
u receive sub --timeout -2
u receive sub --timeout 99999999999
u status --json=yes
u status extra
u check --queue
u prune --repair
u init --queue
u help init status
exits --config ctl --config
