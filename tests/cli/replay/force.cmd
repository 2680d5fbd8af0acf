# --force replaces an existing directory or file, and leaves nothing aside.
mkdir out && echo old > out/marker && echo file > plain
"$TOOLS/migstream-replay" --force -o out "$SAMPLES/empty-guest.mig" || exit
"$TOOLS/migstream-replay" --force -o plain "$SAMPLES/empty-guest.mig" || exit
ls -A . out plain
