# "-" reads standard input, from a redirect and from a pipe.
set -o pipefail
"$TOOLS/migstream-dump" --summary - <"$SAMPLES/basic.mig" >redirect.txt || exit
cat "$SAMPLES/basic.mig" | "$TOOLS/migstream-dump" --summary - >pipe.txt || exit
"$TOOLS/migstream-dump" --summary "$SAMPLES/basic.mig" >file.txt || exit
cmp redirect.txt file.txt && cmp pipe.txt file.txt && cat pipe.txt
