#!/usr/bin/env bash
# Every symbol a shared library of the project exports must start with pps_.
set -euo pipefail
status=0
for lib in "$@"; do
  bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' \
        | grep -v '^pps_' | grep -v '^_init$\|^_fini$' || true)
  count=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/' | grep -c ' pps_' || true)
  if [ -n "$bad" ]; then
    echo "$lib exports symbols outside pps_:" >&2
    echo "$bad" >&2
    status=1
  elif [ "$count" -eq 0 ]; then
    echo "$lib exports no pps_ symbol at all" >&2
    status=1
  else
    echo "$lib: $count symbols, all pps_"
  fi
done
exit $status
