# Every command has a help, the same through "help COMMAND",
# "COMMAND --help" and "COMMAND -h", also with other arguments around.
for c in init prune clear status send receive check remove-subscriber help; do
  ctl help "$c" >help.txt || echo "help $c failed"
  [ -s help.txt ] || echo "help $c is empty"
  head -n 1 help.txt | grep -q "^Usage: persipubsub-ctl.* $c" ||
    echo "help $c: bad first line"
  ctl "$c" --help | cmp -s - help.txt || echo "$c --help differs"
  ctl "$c" -h | cmp -s - help.txt || echo "$c -h differs"
done
# --help wins over what else is wrong, and needs no configuration.
ctl receive --count x --help | cmp -s - <(ctl help receive) ||
  echo "receive --count x --help differs"
ctl help receive
