# A migration in parts against the same parts with part 1 cut in the middle
# of its record 5: B is compared as far as it was read; the error object
# names the part's file as its input and the part, and offset and record
# count in that part's stream.
cd "$SAMPLES" || exit
head -c 5000 parts.1.mig > "$OLDPWD/cut.1.mig"
"$TOOLS/migstream-diff" --json parts.0.mig --with-a parts.1.mig --with-a parts.2.mig \
    parts.0.mig --with-b "$OLDPWD/cut.1.mig" --with-b parts.2.mig > "$OLDPWD/out.jsonl" 2>"$OLDPWD/err.txt"
status=$?
sed "s|$OLDPWD/||g" "$OLDPWD/out.jsonl"
sed "s|$OLDPWD/||g" "$OLDPWD/err.txt" >&2
exit $status
