# Format 1.3: a DUPLICATE must name a source whose last copy is DATA or
# DUPLICATE (FORMAT.md section 6.2). The reader alone reads the stream;
# validate reports the first such extent of the record (a ZERO source; the
# next one names a page never sent), and replay refuses the stream.
python3 "$(dirname "$0")/mkstreams.py" dupsource dup.mig || exit
"$TOOLS/migstream-dump" --summary dup.mig > /dev/null; echo "dump exit $?"
"$TOOLS/migstream-validate" dup.mig; echo "validate exit $?"
"$TOOLS/migstream-replay" -o out dup.mig; echo "replay exit $?"
