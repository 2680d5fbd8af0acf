# Bytes after END (standard input, from a pipe): an error, exit 1.
{ cat "$SAMPLES/basic.mig"; printf junk; } | "$TOOLS/migstream-validate" -
