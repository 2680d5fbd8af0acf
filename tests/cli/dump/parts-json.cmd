# The same migration in parts as JSON Lines: "part" on every record (null on
# the migration's END), "parts" in the header and the totals.
cd "$SAMPLES" && "$TOOLS/migstream-dump" --json parts.1.mig parts.2.mig parts.0.mig
