# The same in JSON: one problem with check "framing", and "framing_lost":
# true in the result.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[1206796 + 4] ^= 1; open("length.mig", "wb").write(b)' "$SAMPLES/basic.mig"
"$TOOLS/migstream-validate" --json length.mig
