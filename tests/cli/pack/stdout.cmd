# -o - writes the stream to standard output: piped into migstream-replay
# reading "-", and the same bytes as -o FILE.
truncate -s 8K img && printf 'data' > head && dd if=head of=img conv=notrunc status=none
"$TOOLS/migstream-pack" -o - img | "$TOOLS/migstream-replay" -o out - || exit
cmp img out/region-0.img && echo "piped: image back"
"$TOOLS/migstream-pack" -o - img > piped.mig && "$TOOLS/migstream-pack" -o file.mig img &&
  cmp piped.mig file.mig && echo "-o - and -o FILE: same bytes"
ls -A
