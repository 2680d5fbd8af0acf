# Bytes after the END record are damage (FORMAT.md section 2): B is compared
# whole, then the damage is said; exit 1.
{ cat "$SAMPLES/basic.mig"; printf x; } | "$TOOLS/migstream-diff" "$SAMPLES/basic.mig" -
