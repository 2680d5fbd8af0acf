# "-" reads standard input: a redirect, a pipe, and a pipe cut short (exit 1).
set -o pipefail
"$TOOLS/migstream-validate" - <"$SAMPLES/basic.mig" || exit
cat "$SAMPLES/compressed.mig" | "$TOOLS/migstream-validate" - || exit
head -c 100000 "$SAMPLES/basic.mig" | "$TOOLS/migstream-validate" -
