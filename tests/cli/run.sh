#!/usr/bin/env bash
# Runs the command-line cases of one tool: tests/cli/TOOL/*.cmd.
#
#   run.sh TOOL TOOLS_DIR GEN_STREAMS
#
# Each case NAME.cmd is a bash script run in a fresh temporary directory with
# these variables set:
#   TOOLS    directory holding the built tools (call "$TOOLS/migstream-dump")
#   SAMPLES  directory of sample streams written by gen-streams (read-only
#            by convention: copy before modifying)
#   GEN      the gen-streams program (e.g. "$GEN" --big 4 | ...)
# Expectations beside it, each optional:
#   NAME.stdout  exact standard output
#   NAME.stderr  exact standard error
#   NAME.exit    exit status (default 0)
#   NAME.unchecked  glob patterns of files under the case's directory that
#                the case breaks on purpose, not checked against the schemas
#   NAME.needs   the optional modules the case needs, separated by spaces:
#                "qemu", "libvirt", "schema", "xen" (built with it), "no-qemu"
#                (built without it); the case is skipped in other builds.
#                MS_MODULES lists the build's modules (meson sets it;
#                default: every module).
# The JSON a case produces is checked against docs/schemas/ (check-json.py):
# each JSON Lines output on its standard output (from the tool's
# {"kind":"output",...} head on), each {"kind":"progress",...} line on its
# standard error (--progress=json), and each manifest.json and device-N.json
# it leaves in its directory; a case whose JSON does not fit fails. Without
# python3-jsonschema, this check is skipped with a note.
# Set UPDATE=1 to rewrite .stdout/.stderr files from the actual output (then
# review the diff before committing).
set -u
tool=$1 tools=$(cd "$2" && pwd) gen=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
here=$(cd "$(dirname "$0")" && pwd)
cases_dir=$here/$tool
[ -d "$cases_dir" ] || { echo "no cases for $tool in $cases_dir"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$gen" "$work/samples" || { echo "gen-streams failed"; exit 1; }
chmod -R a-w "$work/samples"

modules=" ${MS_MODULES-qemu schema libvirt xen} "
# Whether the build has what NAME.needs asks for.
has_needs() {
  local need
  [ -f "$1" ] || return 0
  for need in $(cat "$1"); do
    case $need in
      no-*) [[ $modules == *" ${need#no-} "* ]] && return 1 ;;
      *) [[ $modules == *" $need "* ]] || return 1 ;;
    esac
  done
  return 0
}

schemas=$here/../../docs/schemas
json_unchecked=0
pass=0 fail=0 skip=0
for cmd in "$cases_dir"/*.cmd; do
  name=$(basename "$cmd" .cmd)
  if ! has_needs "$cases_dir/$name.needs"; then
    skip=$((skip + 1)); echo "skip $tool/$name: needs $(cat "$cases_dir/$name.needs")"
    continue
  fi
  dir=$work/case-$name
  mkdir "$dir"
  (cd "$dir" && TOOLS=$tools SAMPLES=$work/samples GEN=$gen bash "$cmd" \
      >"$work/$name.out" 2>"$work/$name.err" </dev/null)
  status=$?
  want_status=0
  [ -f "$cases_dir/$name.exit" ] && want_status=$(cat "$cases_dir/$name.exit")
  ok=1 why=""
  if [ "$status" != "$want_status" ]; then ok=0; why="exit $status, expected $want_status"; fi
  for stream in stdout stderr; do
    ext=out; [ $stream = stderr ] && ext=err
    want=$cases_dir/$name.$stream
    if [ "${UPDATE:-0}" = 1 ] && [ -f "$want" ]; then cp "$work/$name.$ext" "$want"; fi
    if [ -f "$want" ] && ! cmp -s "$want" "$work/$name.$ext"; then
      ok=0; why="$why${why:+; }$stream differs"
      diff -u "$want" "$work/$name.$ext" | head -40 | sed 's/^/    /'
    fi
  done
  unchecked=()
  [ -f "$cases_dir/$name.unchecked" ] && unchecked=("$cases_dir/$name.unchecked")
  python3 "$here/check-json.py" --stderr "$work/$name.err" "$schemas" "$dir" "$work/$name.out" \
      "${unchecked[@]}" \
      >"$work/$name.json-check" 2>&1
  case $? in
    0) ;;
    77) json_unchecked=1 ;;
    *) ok=0; why="$why${why:+; }JSON does not fit docs/schemas"
       head -20 "$work/$name.json-check" | sed 's/^/    /' ;;
  esac
  if [ $ok = 1 ]; then
    pass=$((pass + 1)); echo "ok   $tool/$name"
  else
    fail=$((fail + 1)); echo "FAIL $tool/$name: $why"
    echo "    stderr:"; head -20 "$work/$name.err" | sed 's/^/      /'
  fi
done
[ $skip = 0 ] || echo "$skip skipped (not built with what they need)"
[ $json_unchecked = 0 ] || echo "JSON outputs not checked against docs/schemas: no python3-jsonschema"
echo "$pass passed, $fail failed"
[ $fail = 0 ] && [ $pass -gt 0 ]
