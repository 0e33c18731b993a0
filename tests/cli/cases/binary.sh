# A binary payload (all 256 byte values) goes through send (stdin) and
# receive --raw byte for byte; --raw adds no separator between messages.
init_queue
for i in $(seq 0 255); do
  printf "\\$(printf %03o "$i")"
done >all.bin
[ "$(wc -c <all.bin)" -eq 256 ] || echo "all.bin is not 256 bytes"
ctl --config config.json send pub <all.bin
ctl --config config.json receive sub --raw >out.bin
cmp all.bin out.bin && echo "one message: identical"
ctl --config config.json send pub <all.bin
ctl --config config.json send pub <all.bin
ctl --config config.json receive audit --raw >out3.bin
cat all.bin all.bin all.bin | cmp - out3.bin && echo "three messages: identical"
# An empty stdin is an empty message.
ctl --config config.json send pub </dev/null
ctl --config config.json receive audit --count 1
