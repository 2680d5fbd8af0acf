# Bytes after the END record are an error (FORMAT.md section 2).
{ cat "$SAMPLES/basic.mig"; printf x; } | "$TOOLS/migstream-diff" "$SAMPLES/basic.mig" -
