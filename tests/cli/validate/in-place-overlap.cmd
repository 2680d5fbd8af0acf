# Two regions' IN_PLACE pages reference overlapping bytes of the in-place
# space (FORMAT.md section 6.2): an error naming both ranges, exit 1.
"$TOOLS/migstream-validate" "$SAMPLES/in-place-overlap.mig"
