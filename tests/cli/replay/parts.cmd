# A migration in parts replays to the files its single stream (live.mig,
# the same migration in one stream) replays to.
cd "$SAMPLES" && "$TOOLS/migstream-replay" -q --view -o "$OLDPWD/parts" parts.2.mig parts.1.mig parts.0.mig || exit
"$TOOLS/migstream-replay" -q --view -o "$OLDPWD/one" live.mig || exit
cd "$OLDPWD" && ls parts
for f in $(cd one && ls | grep -v manifest.json); do cmp "one/$f" "parts/$f" || exit; done
echo "every file but the manifest is the single stream's"
