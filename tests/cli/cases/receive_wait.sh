# A waiting receive gets a message that another process sends meanwhile.
init_queue
(sleep 0.3; ctl --config config.json send pub late) &
ctl --config config.json receive sub --count 1 --timeout 10000
echo "exit $?"
wait
