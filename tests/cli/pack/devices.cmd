# --device with a JSON file (converted to CBOR: objects to maps with text
# keys in file order, integers in their shortest form, reals as 64-bit
# floats, strings to text, true/false/null) and with a CBOR file (embedded as
# is). Given in reverse order, they are written by path then instance.
printf '{"rip": 65520, "neg": -3, "big": 4294967296, "pi": 1.5, "s": "\\u00e9",\n "l": [true, false, null], "o": {}}\n' > cpu.json
printf '\xa2\x63mac\x46\x52\x54\x00\x12\x34\x56\x66queues\x02' > net.cbor
truncate -s 4K img
"$TOOLS/migstream-pack" -o d.mig --device 'pci0/0000:00:02.0/virtio-net:virtio-net:2:net.cbor' \
  --device cpu:x86-cpu:1:cpu.json img || exit
"$TOOLS/migstream-replay" -o out d.mig || exit
# the JSON file's CBOR, written out by hand
printf '\xa7\x63rip\x19\xff\xf0\x63neg\x22\x63big\x1b\x00\x00\x00\x01\x00\x00\x00\x00\x62pi\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00\x61s\x62\xc3\xa9\x61l\x83\xf5\xf4\xf6\x61o\xa0' |
  cmp - out/device-0.cbor && echo "cpu.json became the expected CBOR"
cmp net.cbor out/device-1.cbor && echo "net.cbor embedded as is"
cat out/device-0.json out/device-1.json
sed -n '/"devices"/,$p' out/manifest.json
