# --page naming no region, or a page outside its region: exit 1.
"$TOOLS/migstream-dump" --page 0:1024 "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" --page vga:0 "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" --page 7:0 "$SAMPLES/basic.mig"
