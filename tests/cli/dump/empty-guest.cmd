# No regions, no devices: INFO and END only.
"$TOOLS/migstream-dump" "$SAMPLES/empty-guest.mig"
