# A waiting receive gets a message that another process sends meanwhile.
# The send waits until the receive sleeps on the queue: pps.wake counts the
# sleeping receivers (a uint32 at byte 28, host order; src/wakeup.c), so the
# message reaches a receive that is really waiting, however slow the machine.
init_queue
ctl --config config.json receive sub --count 1 --timeout 10000 >received &
receiver=$!
waiters() {
  od -An -tu4 -j28 -N4 queues/demo/pps.wake | tr -d ' '
}
tries=0
until [ "$(waiters)" -gt 0 ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 2000 ] || ! kill -0 "$receiver" 2>/dev/null; then
    echo "the receive never waited (pps.wake counts $(waiters) waiters)"
    break
  fi
  sleep 0.005
done
ctl --config config.json send pub late
status=0
wait "$receiver" || status=$?
cat received
echo "exit $status"
