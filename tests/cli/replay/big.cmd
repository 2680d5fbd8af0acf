# A 1 GiB guest (gen-streams --big 1: one 0x5A page per MiB) through a pipe:
# a sparse 1 GiB image holding 1024 pages, memory bounded (see the man page).
"$GEN" --big 1 | "$TOOLS/migstream-replay" -q -o out - || exit
grep -A12 '"regions"' out/manifest.json
used=$(( $(stat -c %b out/region-0.img) * 512 ))
[ $used -le $(( (1024 + 64) * 4096 )) ] && echo "at most 1088 pages allocated" || echo "$used bytes allocated"
# page 0 of each MiB is 0x5A, the rest zero
[ "$(od -An -tx1 -j $((512 << 20)) -N 4 out/region-0.img)" = " 5a 5a 5a 5a" ] && echo "MiB 512 starts with 5a"
[ "$(od -An -tx1 -j $(((512 << 20) + 4096)) -N 4 out/region-0.img)" = " 00 00 00 00" ] && echo "its page 1 is zero"
