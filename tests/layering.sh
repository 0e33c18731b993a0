#!/usr/bin/env bash
# The files of src/ call each other in one direction only (src/internal.h,
# top comment): no file calls a file that calls it back, directly or
# through others. Reads the library's object files: every pps__ symbol a
# file uses comes from the file that defines it; the graph of
# "defining file -> using file" must have no cycle (tsort finds one).
# Usage: layering.sh OBJECT...
set -euo pipefail
declare -A owner
for o in "$@"; do
  f=$(basename "$o" .o); f=${f%.c}
  while read -r sym; do owner[$sym]=$f; done < <(nm -g --defined-only "$o" \
    | awk '$3 ~ /^pps__/ {print $3}')
done
edges=$(for o in "$@"; do
  f=$(basename "$o" .o); f=${f%.c}
  nm -u "$o" | awk '$2 ~ /^pps__/ {print $2}' | while read -r sym; do
    [ -n "${owner[$sym]:-}" ] && echo "${owner[$sym]} $f"
  done
done | sort -u)
[ -n "$edges" ] || { echo "layering: no calls between files found" >&2; exit 1; }
if ! order=$(tsort <<<"$edges" 2>&1) || grep -q loop <<<"$order"; then
  echo "layering: files of src/ call each other in a cycle:" >&2
  echo "$order" >&2
  exit 1
fi
echo "layering: $(wc -l <<<"$edges") calls between files, no cycle; bottom up:"
grep -v tsort <<<"$order" | tr '\n' ' '; echo
