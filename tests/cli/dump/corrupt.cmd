# A flipped byte in page data: the checksum of record 2 fails; everything
# before it is printed, the error names the record and byte, exit 2.
"$TOOLS/migstream-dump" "$SAMPLES/corrupt.mig"
