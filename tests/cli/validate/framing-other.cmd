# A flipped bit in record 5's stored checksum: record 5 fails, and record 6
# too (its checksum chains to the stored value), record 7 (END) passes: both
# failures are reported, the stream is read to its end, the framing holds.
# A length field 16 bytes short (record 4, PAGES at byte 1202596): 16 bytes
# of its own payload make a "record" of type 0, after which record 6 lines
# up again by chance; the framing is lost at record 4 all the same, and
# nothing after it is checked.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[1206796 + 8] ^= 1; open("sum.mig", "wb").write(b)' "$SAMPLES/basic.mig"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[1202596 + 4] ^= 0x10; open("short.mig", "wb").write(b)' "$SAMPLES/basic.mig"
"$TOOLS/migstream-validate" sum.mig; echo "checksum field: exit $?"
"$TOOLS/migstream-validate" short.mig; echo "short length: exit $?"
