# The parts of a migration, part 1 cut in the middle of its record 5: the
# totals of what was read, marked partial; no part was read to its END, so
# each says so; then the error naming part 1 and its file.
head -c 5000 "$SAMPLES/parts.1.mig" > cut.1.mig
"$TOOLS/migstream-dump" --summary "$SAMPLES/parts.0.mig" cut.1.mig "$SAMPLES/parts.2.mig"
