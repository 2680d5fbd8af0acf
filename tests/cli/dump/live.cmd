# A live migration in three rounds (format 1.1): ROUND records with their
# tracker, granularity and dirty count, every page state, overlays, and the
# END totals of rounds and overlays.
"$TOOLS/migstream-dump" "$SAMPLES/live.mig"
