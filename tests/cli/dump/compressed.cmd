# zstd-compressed PAGES: same pages as basic, smaller data sections.
"$TOOLS/migstream-dump" "$SAMPLES/compressed.mig"
