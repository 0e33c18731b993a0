# The queue path is a plain file.
use_config demo
mkdir queues
echo hello >queues/demo
ctl --config config.json check
