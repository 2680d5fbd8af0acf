# A ZERO page by region id: zeros with a note.
"$TOOLS/migstream-dump" --page 0:0 "$SAMPLES/basic.mig"
