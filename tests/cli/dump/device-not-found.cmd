# No device with that path: exit 1.
"$TOOLS/migstream-dump" --device nic "$SAMPLES/basic.mig"
