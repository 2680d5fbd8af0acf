# One flipped bit in the length field of record 5 (DEVICE "cpu", at byte
# 1206796; the length is the 4 bytes at +4): its checksum fails, and 43
# bytes on no record lines up (reserved flag bits, then a length beyond the
# limit). One error says the framing is lost at record 5 and that nothing
# from its byte on is checked as records; the follow-on "records" are not
# reported, and records and bytes count what was read before it.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[1206796 + 4] ^= 1; open("length.mig", "wb").write(b)' "$SAMPLES/basic.mig"
"$TOOLS/migstream-validate" length.mig
