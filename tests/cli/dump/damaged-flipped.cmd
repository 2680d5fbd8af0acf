# A copy of live.mig with one flipped byte in record 6: --summary gives the
# totals of records 0..5, marked partial, then the checksum mismatch; exit 1.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[30000] ^= 1; open("flipped.mig", "wb").write(b)' "$SAMPLES/live.mig"
"$TOOLS/migstream-dump" --summary flipped.mig
