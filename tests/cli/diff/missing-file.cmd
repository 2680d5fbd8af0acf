# A stream that cannot be opened: exit 2, the file named.
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" no-such.mig
