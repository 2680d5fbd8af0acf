# basic without END: every record is printed, then the error, exit 2.
"$TOOLS/migstream-dump" "$SAMPLES/truncated.mig"
