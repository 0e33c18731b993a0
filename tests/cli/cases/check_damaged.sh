# A queue damaged through LMDB (a payload deleted): check reports it and
# exits 1; check --repair fixes it and says so; then check is clean, and
# the other messages are still delivered.
init_queue
for m in one two three; do
  ctl --config config.json send pub "$m"
done
setup damage queues/demo delete-payload 2
exits "check" ctl --config config.json check
exits "check --repair" ctl --config config.json check --repair
exits "check again" ctl --config config.json check
ctl --config config.json receive sub
