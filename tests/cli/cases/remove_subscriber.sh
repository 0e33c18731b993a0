# remove-subscriber: audit leaves the configuration, then the queue. Its
# pending messages are released (those only it pended on are deleted), the
# others stay for sub; init with the new configuration does not bring it
# back, and the queue is consistent.
init_queue
ctl --config config.json send pub one
ctl --config config.json receive sub --count 1 >/dev/null
ctl --config config.json send pub two
sed -e 's/, "audit"//' -e '/"audit": /d' config.json >retired.json
ctl --config retired.json remove-subscriber queues/demo audit
ctl --config retired.json status --json | jsonflat | grep -E 'subscribers\.[0-9]+\.(id|pending)|\.messages '
ctl --config retired.json init
ctl --config retired.json receive sub
ctl --config retired.json check
exits "again" ctl --config retired.json remove-subscriber queues/demo audit
