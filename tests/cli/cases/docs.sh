# The manual page generated from docs/persipubsub-ctl.rst ($PPS_MAN_PAGE,
# made by rst2man at build time) renders without warnings; it and the .rst
# document every command and option that the tool's help lists, for the
# tool's version. Without groff the case is skipped (ctest shows it).
docs=$CLI_DIR/../../docs
command -v groff >/dev/null || skip "groff is missing (Debian: groff-base)"
man=${PPS_MAN_PAGE:-}
if [ -z "$man" ] || [ ! -s "$man" ]; then
  echo "no generated manual page (PPS_MAN_PAGE=$man)"
fi
sed 's/\\-/-/g' "$man" >man.txt
# With tbl, as man(1) runs it; on a terminal of 80 and of 65 columns too.
groff -t -man -ww -z "$man" 2>&1 | sed 's/^/groff: /'
for width in 80 65; do
  groff -t -man -ww -Tutf8 -rLL=${width}n "$man" 2>&1 >/dev/null |
    sed "s/^/groff -Tutf8 ($width columns): /"
done
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
grep -q "^\.TH \"PERSIPUBSUB-CTL\" 1 \"\" \"$version\" \"persipubsub\"" "$man" ||
  echo "man page: .TH is not for version $version"
# No hand-written copy of the manual page is left to drift.
[ ! -e "$docs/persipubsub-ctl.1" ] || echo "docs/persipubsub-ctl.1 exists"
echo "checked $(echo $words $commands | wc -w) names"
