# Hand-made stream (validate/mkstreams.py sparse): ram page 9 was never sent,
# and pages sent twice show their last copy; a region name with colons.
python3 "$(dirname "$0")/../validate/mkstreams.py" sparse sparse.mig || exit
"$TOOLS/migstream-dump" --page ram:9 sparse.mig
"$TOOLS/migstream-dump" --page ram:1 sparse.mig
"$TOOLS/migstream-dump" --page 0:2 sparse.mig
"$TOOLS/migstream-dump" --page 0000:00:01.0/vga.vram:0 sparse.mig
"$TOOLS/migstream-dump" --json --page 5:2 sparse.mig
