# Hand-made stream (format 1.3, optional bit 5) whose record 3 has a bad
# checksum: the header shows the version and bit, records 0-2 are printed.
python3 "$(dirname "$0")/../validate/mkstreams.py" damaged damaged.mig || exit
"$TOOLS/migstream-dump" damaged.mig
