# The same in JSON, the damaged copy as side b.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[30000] ^= 1; open("flipped.mig", "wb").write(b)' "$SAMPLES/live.mig"
"$TOOLS/migstream-diff" --json "$SAMPLES/live.mig" flipped.mig
