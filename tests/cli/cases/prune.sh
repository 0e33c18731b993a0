# prune removes what is older than MSG_TIMEOUT_SECS (1 s for queue alpha,
# 500 s for beta) and says what it removed per queue; --queue limits it to
# one queue.
init_queue two
ctl --config config.json send pub a
ctl --config config.json send pub b
ctl --config config.json send tpub c
sleep 1.2
ctl --config config.json prune --queue beta
ctl --config config.json prune
ctl --config config.json receive sub
ctl --config config.json receive tsub
