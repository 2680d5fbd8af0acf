# A migration in 3 parts (gen-streams' parts.K.mig, live.mig's migration),
# given out of order: one dump, round by round, each record with its part
# and its offset and index in that part; the parts in the header and the
# totals, the migration digest last.
cd "$SAMPLES" && "$TOOLS/migstream-dump" parts.2.mig parts.0.mig parts.1.mig
