# Neither --config nor PERSIPUBSUB_CONFIG.
use_config demo
ctl init
