# --page on each new state: a FILL page shows its bytes, a DISCARDED page
# says its contents do not matter, an IN_PLACE page names its address.
for p in 3 16 41 40 57; do
    "$TOOLS/migstream-dump" --page "ram:$p" "$SAMPLES/live.mig" | head -n 3
done
"$TOOLS/migstream-dump" --json --page ram:57 "$SAMPLES/live.mig"
