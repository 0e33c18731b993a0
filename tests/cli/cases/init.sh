# init creates the queue and is idempotent; --config may come before or
# after the command, or from PERSIPUBSUB_CONFIG.
use_config demo
ctl --config config.json init
ctl init --config config.json
PERSIPUBSUB_CONFIG=config.json ctl init
ctl --config=config.json init
[ -f queues/demo/pps.wake ] || echo "no queue"
