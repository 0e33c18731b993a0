#!/usr/bin/env bash
# The installed protobuf companion, used as a newcomer would:
#
# 1. a CMake project of one's own (docs/examples/project/CMakeLists.txt with
#    the example programs) finds persipubsub::persipubsub-protobuf, builds,
#    and its programs pass messages;
# 2. the tutorial of docs/guide.rst runs verbatim: every `.. code-block:: sh`
#    between the comments `.. tutorial-begin` and `.. tutorial-end`, in
#    order, in one shell, in a fresh home directory, with a `.. code-block::
#    text` that follows one as its expected standard output.
#
#   pb_install.sh BUILD_DIR SOURCE_DIR
#
# If the build has no persipubsub-ctl to install, a stand-in doing `init`
# with the example program pps-example-init takes its place.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "pb_install: $*" >&2
  exit 1
}

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > /dev/null
pc=$(find "$prefix" -name persipubsub-protobuf.pc | head -n 1)
[ -n "$pc" ] || fail "persipubsub-protobuf.pc was not installed"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
export LD_LIBRARY_PATH
LD_LIBRARY_PATH=$(dirname "$PKG_CONFIG_PATH")

mkdir -p "$tmp/bin"
if [ ! -x "$prefix/bin/persipubsub-ctl" ]; then
  echo "pb_install: no persipubsub-ctl installed; using a stand-in for init"
  cat > "$tmp/bin/persipubsub-ctl" <<EOF
#!/bin/sh
if [ "\$#" -eq 3 ] && [ "\$1" = --config ] && [ "\$3" = init ]; then
  exec "$build/docs/examples/pps-example-init" "\$2"
fi
echo "persipubsub-ctl stand-in: only --config FILE init" >&2
exit 2
EOF
  chmod +x "$tmp/bin/persipubsub-ctl"
fi
export PATH="$prefix/bin:$tmp/bin:$PATH"

# ---- 1. a CMake project ------------------------------------------------------
proj=$tmp/project
mkdir -p "$proj"
cp "$src/docs/examples/project/CMakeLists.txt" "$src/docs/examples/demo.proto" \
   "$src/docs/examples/pb_publisher.c" "$src/docs/examples/pb_subscriber.c" \
   "$proj"
cmake -S "$proj" -B "$proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
  > "$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log" >&2;
                               fail "configuring the CMake project"; }
cmake --build "$proj/build" > "$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "building the CMake project"; }
cat > "$proj/pair.json" <<'EOF'
{
  "pub": {"out_queue": "q"},
  "sub": {"in_queue": "q"},
  "queues": {"q": {"path": "q", "max_db_size_bytes": 67108864,
                   "subscribers": ["sub"]}}
}
EOF
persipubsub-ctl --config "$proj/pair.json" init
"$proj/build/pb_publisher" "$proj/pair.json" pub 2 > /dev/null
[ "$("$proj/build/pb_subscriber" "$proj/pair.json" sub 2 1000 | wc -l)" -eq 2 ] ||
  fail "the CMake project's programs did not pass 2 messages"
echo "pb_install: CMake project ok"

# ---- 2. the tutorial, verbatim ----------------------------------------------
steps=$tmp/steps
mkdir -p "$steps"
awk -v out="$steps/" '
function indent(s) { match(s, /^ */); return RLENGTH }
function flush(   i, min, file) {
  while (n > 0 && buf[n - 1] == "") n--
  if (n == 0) return
  min = 1e9
  for (i = 0; i < n; i++)
    if (buf[i] != "" && indent(buf[i]) < min) min = indent(buf[i])
  file = out "step." nsh (lang == "sh" ? ".sh" : ".expected")
  for (i = 0; i < n; i++) print substr(buf[i], min + 1) > file
  close(file)
}
BEGIN { nsh = 0; n = 0 }
/^\.\. tutorial-begin/ { on = 1; next }
/^\.\. tutorial-end/ { if (inblk) flush(); on = 0; inblk = 0 }
!on { next }
{
  line = $0
  sub(/[ \t\r]+$/, "", line)
  if (inblk) {
    if (line == "" || indent(line) > 0) {
      if (line != "" || n > 0) buf[n++] = line
      next
    }
    flush(); inblk = 0
  }
  if (line ~ /^\.\. code-block:: sh$/) {
    inblk = 1; lang = "sh"; nsh++; n = 0; expected = 0
  } else if (line ~ /^\.\. code-block:: text$/ && nsh > 0 && !expected) {
    inblk = 1; lang = "text"; n = 0; expected = 1
  }
}
END {
  if (on) { print "tutorial-end missing" > "/dev/stderr"; exit 1 }
  print nsh > (out "count")
}' "$src/docs/guide.rst"
nsteps=$(cat "$steps/count")
[ "$nsteps" -gt 0 ] || fail "no tutorial steps found in docs/guide.rst"

{
  echo 'set -euo pipefail'
  # shellcheck disable=SC2016 # expanded when the script runs
  echo 'cd "$HOME"'
  for ((i = 1; i <= nsteps; i++)); do
    echo "echo '== tutorial step $i' >&2"
    echo '{'
    cat "$steps/step.$i.sh"
    echo "} > '$steps/out.$i'"
    if [ -f "$steps/step.$i.expected" ]; then
      echo "diff -u '$steps/step.$i.expected' '$steps/out.$i'"
    fi
  done
} > "$steps/run.sh"

mkdir -p "$tmp/home"
if ! HOME="$tmp/home" PPS_SRC="$src" bash "$steps/run.sh"; then
  echo "pb_install: the tutorial failed; the script was:" >&2
  cat -n "$steps/run.sh" >&2
  exit 1
fi
echo "pb_install: tutorial ok ($nsteps steps)"
