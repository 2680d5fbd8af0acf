# One device in full, text and JSON.
"$TOOLS/migstream-dump" --device cpu "$SAMPLES/basic.mig"
"$TOOLS/migstream-dump" --json --device pci0/0000:00:02.0/virtio-net "$SAMPLES/basic.mig"
