# Bytes after END (from standard input): the whole dump, totals included, is
set -o pipefail
# printed, then the error, exit 2.
{ cat "$SAMPLES/basic.mig"; printf junk; } | "$TOOLS/migstream-dump" --summary -
