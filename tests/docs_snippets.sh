#!/usr/bin/env bash
# The documentation shows compiled code: every C code block of the given
# reStructuredText files must be a verbatim part of one of the given C
# files, all of which the build compiles (cmake/protobuf.cmake). CMake and
# protobuf code blocks are checked the same way against the given CMake and
# .proto files, if any are given.
#
#   docs_snippets.sh --rst FILE.rst... --c FILE.c... [--cmake FILE...]
#                    [--proto FILE.proto...]
#
# A code block is `.. code-block:: LANG` (or `.. code:: LANG`,
# `.. sourcecode:: LANG`) with its indented body. Blank lines split a block
# into chunks. The chunks must appear in one file of the block's language,
# in the same order, each as consecutive lines that are the chunk's lines
# with one indentation added to all of them. So a block may show a function
# and then some statements of another function (the file closes one and
# opens the other between the chunks), but no line may differ, move or go
# missing. Trailing white space is ignored. Blocks of other languages (sh,
# text, ...) are not checked here.
#
# C code in a plain literal block (a paragraph ending in "::") would escape
# the check, so a literal block with a line like `pps_xxx(...);` is an
# error: write it as `.. code-block:: c`.
set -euo pipefail

usage() {
  echo "usage: $0 --rst FILE.rst... --c FILE.c... [--cmake FILE...]" \
       "[--proto FILE.proto...]" >&2
  exit 2
}

rst=()
declare -A sources=() # language -> files, separated by newlines
mode=
for arg in "$@"; do
  case "$arg" in
    --rst) mode=rst ;;
    --c | --cmake | --proto) mode=${arg#--} ;;
    *)
      [ -n "$mode" ] || usage
      [ -r "$arg" ] || { echo "$0: cannot read $arg" >&2; exit 2; }
      if [ "$mode" = rst ]; then
        rst+=("$arg")
      else
        sources[$mode]+="$arg"$'\n'
      fi
      ;;
  esac
done
if [ ${#rst[@]} -eq 0 ] || [ -z "${sources[c]:-}" ]; then
  usage
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# Writes each checked block to $tmp/block.N: a first line "LANG FILE:LINE",
# then the body with trailing white space removed. Reports C-looking
# literal blocks.
awk -v out="$tmp/block." -v langs="c cmake proto" '
function indent(s) { match(s, /^ */); return RLENGTH }
function flush(   i, first, last) {
  first = 0; last = n - 1
  while (first <= last && buf[first] == "") first++
  while (last >= first && buf[last] == "") last--
  if (first <= last) {
    nblocks++
    file = out nblocks
    print lang, origin > file
    for (i = first; i <= last; i++) print buf[i] > file
    close(file)
  }
  n = 0
}
FNR == 1 { if (inblk) flush(); inblk = 0; inlit = 0 }
{
  line = $0
  sub(/[ \t\r]+$/, "", line)
  if (inblk) {
    if (line == "") { body = 1; if (n > 0) buf[n++] = ""; next }
    if (indent(line) > dind) {
      if (!body && line ~ /^ *:[A-Za-z-]+:/) next  # directive options
      body = 1; buf[n++] = line; next
    }
    flush(); inblk = 0
  }
  if (inlit) {
    if (line == "" || indent(line) > lind) {
      if (line ~ /pps_[a-z_]+ *\(.*\) *;/ && !reported) {
        printf "%s:%d: C code in a literal block (\"::\"): write it as " \
               ".. code-block:: c so that it is checked\n", FILENAME, FNR \
               > "/dev/stderr"
        bad = 1; reported = 1
      }
      next
    }
    inlit = 0
  }
  if (line ~ /^ *\.\. +(code-block|code|sourcecode):: +[A-Za-z0-9+-]+$/) {
    lang = line
    sub(/.*:: +/, "", lang)
    if (index(" " langs " ", " " lang " ") > 0) {
      inblk = 1; body = 0; dind = indent(line); n = 0
      origin = FILENAME ":" FNR
      if (lang == "c") nc++
    }
    next
  }
  if (line ~ /::$/ && line !~ /^ *\.\. /) {
    inlit = 1; lind = indent(line); reported = 0
  }
}
END {
  if (inblk) flush()
  print nblocks + 0, nc + 0 > (out "count")
  exit bad
}' "${rst[@]}" || status=1

read -r nblocks nc < "$tmp/block.count"
if [ "$nc" -eq 0 ]; then
  echo "$0: no C code block found in ${rst[*]}" >&2
  exit 1
fi

# Exit 0 if the block (first file) is a verbatim part of the C file (second
# file), as described above; else print how many chunks matched and the
# first one that did not.
cat > "$tmp/match.awk" <<'EOF'
function indent(s) { match(s, /^ */); return RLENGTH }
BEGIN { nc = 0; nf = 0 }  # numbers, not "", as array subscripts
NR == FNR {
  if (FNR == 1) next  # the language and origin
  if ($0 == "") { if (len[nc] > 0) nc++; next }
  line[nc, len[nc]++] = $0
  next
}
{ f[++nf] = $0; sub(/[ \t\r]+$/, "", f[nf]) }
function chunk_at(c, p,   j, pre, s, l0) {
  if (p + len[c] - 1 > nf) return 0
  # The file line ends with the chunk line minus its own least indentation;
  # what comes before is the indentation added to the whole chunk.
  s = f[p]
  l0 = substr(line[c, 0], minind[c] + 1)
  if (length(s) < length(l0)) return 0
  if (substr(s, length(s) - length(l0) + 1) != l0) return 0
  pre = substr(s, 1, length(s) - length(l0))
  if (pre !~ /^ *$/) return 0
  for (j = 1; j < len[c]; j++)
    if (f[p + j] != pre substr(line[c, j], minind[c] + 1)) return 0
  return 1
}
END {
  if (len[nc] > 0) nc++
  for (c = 0; c < nc; c++) {
    minind[c] = 1e9
    for (j = 0; j < len[c]; j++)
      if (indent(line[c, j]) < minind[c]) minind[c] = indent(line[c, j])
  }
  pos = 1
  for (c = 0; c < nc; c++) {
    found = 0
    for (p = pos; p <= nf && !found; p++)
      if (chunk_at(c, p)) { found = 1; pos = p + len[c] }
    if (!found) {
      print c, nc, line[c, 0]
      exit 1
    }
  }
  exit 0
}
EOF

for ((i = 1; i <= nblocks; i++)); do
  block="$tmp/block.$i"
  read -r lang origin < "$block"
  if [ -z "${sources[$lang]:-}" ]; then
    echo "$origin: $lang block not checked (no $lang file given)"
    continue
  fi
  mapfile -t files <<< "${sources[$lang]%$'\n'}"
  ok=0
  best=-1
  best_report=
  for c in "${files[@]}"; do
    if report=$(awk -f "$tmp/match.awk" "$block" "$c"); then
      ok=1
      echo "$origin: in $(basename "$c")"
      break
    fi
    matched=${report%% *}
    if [ "$matched" -gt "$best" ]; then
      best=$matched
      best_report="$c: after $matched matching chunk(s), no match for the chunk starting: ${report#* * }"
    fi
  done
  if [ $ok -eq 0 ]; then
    echo "$origin: this $lang code block is not a verbatim part of any of:" \
         "${files[*]}" >&2
    echo "  closest: $best_report" >&2
    status=1
  fi
done
exit $status
