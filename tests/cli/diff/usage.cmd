# Bad usage: exit 2, a message on standard error, nothing on standard output.
D=$TOOLS/migstream-diff
"$D"; echo "no streams: exit $?" >&2
"$D" "$SAMPLES/basic.mig"; echo "one stream: exit $?" >&2
"$D" "$SAMPLES/basic.mig" "$SAMPLES/basic.mig" "$SAMPLES/basic.mig"; echo "three streams: exit $?" >&2
"$D" --bogus "$SAMPLES/basic.mig" "$SAMPLES/basic.mig"; echo "unknown option: exit $?" >&2
"$D" --json=yes "$SAMPLES/basic.mig" "$SAMPLES/basic.mig"; echo "argument to --json: exit $?" >&2
"$D" - - < "$SAMPLES/basic.mig"; echo "standard input twice: exit $?" >&2
"$D" --json
