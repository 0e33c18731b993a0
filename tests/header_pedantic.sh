#!/usr/bin/env bash
# The public header compiles cleanly for C89 users (and C99, C11) with
# -pedantic-errors: no trailing enum comma, no // comment, no C11-only
# construct. Usage: header_pedantic.sh INCLUDE_DIR [CC]
set -euo pipefail
inc=$1
cc=${2:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <persipubsub/persipubsub.h>\nint main(void) { return PPS_OK; }\n' \
  >"$tmp/h.c"
for std in c89 c99 c11; do
  "$cc" -std=$std -pedantic-errors -Wall -Wextra -Werror -I"$inc" \
    -c "$tmp/h.c" -o "$tmp/h.o"
done
echo "header_pedantic: persipubsub.h is clean for C89, C99 and C11"
