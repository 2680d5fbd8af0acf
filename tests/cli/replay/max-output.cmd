# FILL pages describe far more than a stream carries. 109 bytes of FILL
# extent claim 8 TiB: refused before anything is written (1 TiB by default,
# and never past the free space), nothing left. A run of 4096 FILL pages
# sent 100 times is written once: 16 MiB, within --max-output 17M, not
# within 8M. A limit that is not a size is a usage error.
H=$(dirname "$0")
python3 "$H/../../resources/gen.py" fill-huge 1 huge.mig || exit
python3 "$H/../../resources/gen.py" fill-repeat 5600 repeat.mig || exit
"$TOOLS/migstream-replay" -q -o out huge.mig 2>err
echo "exit $?"
grep -o 'the output would take 8796093022208 bytes (8192.0 GiB) with these FILL pages, more than' err
"$TOOLS/migstream-replay" -q --max-output none -o out huge.mig 2>err
echo "exit $?"
grep -o 'bytes free where out is made' err
ls -A
"$TOOLS/migstream-replay" -q --max-output 17M -o out repeat.mig
echo "exit $?"
used=$(( $(stat -c %b out/region-0.img) * 512 ))
[ $used -le $((17 << 20)) ] && echo "at most 17 MiB allocated" || echo "$used bytes allocated"
rm -r out
"$TOOLS/migstream-replay" -q --max-output 8M -o out repeat.mig
echo "exit $?"
"$TOOLS/migstream-replay" -q --max-output 8X -o out repeat.mig
echo "exit $?"
ls -A
