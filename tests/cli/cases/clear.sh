# clear deletes every message but keeps the subscribers and the id sequence.
init_queue two
ctl --config config.json send pub a
ctl --config config.json send tpub b
ctl --config config.json send tpub c
ctl --config config.json clear --queue beta
ctl --config config.json clear
ctl --config config.json receive sub
ctl --config config.json receive tsub
ctl --config config.json send tpub d
ctl --config config.json receive tsub
