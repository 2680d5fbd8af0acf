# JSON: FILL and IN_PLACE extents carry their argument, overlays their
# kind, priority and parameters, totals a "rounds" array.
"$TOOLS/migstream-dump" --json "$SAMPLES/live.mig"
