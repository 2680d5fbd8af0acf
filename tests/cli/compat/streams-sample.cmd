# gen-streams' own samples: basic and changed carry the same devices.
"$TOOLS/migstream-compat" "$SAMPLES/basic.mig" "$SAMPLES/changed.mig" | sed "s|$SAMPLES/||"
