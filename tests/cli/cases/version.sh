ctl --version
