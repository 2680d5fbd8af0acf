# basic.mig: the whole manifest, the files, and every image and device file
# checked against an independent rebuild of gen-streams' guest (guest.py).
H=$(dirname "$0")
"$TOOLS/migstream-replay" -o out "$SAMPLES/basic.mig" || exit
ls -A
ls out
cat out/manifest.json
mkdir want && python3 "$H/guest.py" basic want
cmp out/region-0.img want/pc.ram.img && echo "region-0.img = rebuilt pc.ram"
cmp out/region-1.img want/vga.vram.img && echo "region-1.img = rebuilt vga.vram"
# gen-streams' cpu_state(0xfff0) and net_state(), written out by hand
printf '\xa3\x63rip\x19\xff\xf0\x63rax\x01\x65flags\x82\xf5\xf4' | cmp - out/device-0.cbor &&
  echo "device-0.cbor = cpu state"
printf '\xa2\x63mac\x46\x52\x54\x00\x12\x34\x56\x66queues\x02' | cmp - out/device-1.cbor &&
  echo "device-1.cbor = virtio-net state"
cat out/device-0.json out/device-1.json
