# The queue path is an existing directory that is no queue: refused, and
# left untouched.
use_config demo
mkdir -p queues/demo
ctl --config config.json receive sub
st=$?
[ -z "$(ls -A queues/demo)" ] || echo "queues/demo was changed" >&2
exit $st
