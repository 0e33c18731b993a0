# A queue that was never initialized.
use_config demo
ctl --config config.json status
