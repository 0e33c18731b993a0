# The manual page renders without warnings, and it and docs/persipubsub-ctl.rst
# document every command and option that the tool's help lists, for the
# tool's version.
docs=$CLI_DIR/../../docs
sed 's/\\-/-/g' "$docs/persipubsub-ctl.1" >man.txt
if command -v groff >/dev/null; then
  groff -man -ww -z "$docs/persipubsub-ctl.1" 2>&1 | sed 's/^/groff: /'
fi
{
  ctl --help
  for c in init prune clear status send receive check help; do
    ctl help "$c"
  done
} >help.txt
words=$(grep -o -- '--[a-z][a-z-]*' help.txt | sort -u)
commands=$(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' help.txt | sort -u)
for w in $words $commands; do
  grep -q -- "$w" "$docs/persipubsub-ctl.rst" || echo "rst lacks $w"
  grep -q -- "$w" man.txt || echo "man page lacks $w"
done
version=$(ctl --version | sed 's/.* //')
grep -q "^:Version: $version\$" "$docs/persipubsub-ctl.rst" ||
  echo "rst: :Version: is not $version"
grep -q "^\.TH .*\"persipubsub $version\"" man.txt ||
  echo "man page: .TH is not for version $version"
echo "checked $(echo $words $commands | wc -w) names"
