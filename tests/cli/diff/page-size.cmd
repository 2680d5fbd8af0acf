# One 32 KiB image packed with 4 KiB and with 8 KiB pages (migstream-pack): the
# same memory, so only the page sizes differ (preamble and region). Then a
# copy with byte 100 of 4 KiB page 3 set: 8 KiB page 1 becomes data, but its
# first half (unit 2) still holds only zeros and compares equal to the zero
# page 2 of A; unit 3 is zero in A and data in C.
P=$TOOLS/migstream-pack
printf "page zero" > ram.img && truncate -s 32K ram.img
cp ram.img ram3.img && printf "\001" | dd of=ram3.img bs=1 seek=$((3 * 4096 + 100)) conv=notrunc 2>/dev/null
"$P" -q -o a.mig ram.img && "$P" -q --page-size 8192 -o b.mig ram.img &&
  "$P" -q --page-size 8192 -o c.mig ram3.img || exit
"$TOOLS/migstream-diff" a.mig b.mig; echo "exit $?"
"$TOOLS/migstream-diff" a.mig c.mig; echo "exit $?"
"$TOOLS/migstream-diff" --json c.mig a.mig
