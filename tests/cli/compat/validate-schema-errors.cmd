# Every kind of schema problem in one stream.
cat >s.json <<'END'
{"migstream_schema": 1,
 "devices": [
  {"schema": "x86-cpu", "version": 1,
   "fields": [{"name": "rip", "type": "uint"},
              {"name": "rax", "type": "uint"},
              {"name": "flags", "type": "array", "items": {"type": "bool"}}]},
  {"schema": "virtio-net", "version": 2,
   "fields": [{"name": "mac", "type": "bytes"},
              {"name": "queues", "type": "uint", "since": 2}]}]}
END
. "$(dirname "$0")/lib.sh"
state bad '{"rip": "x", "flags": [true, 3], "extra": null}'
state net1 '{"mac": "5254", "queues": 1}'
state disk '{}'
stream bad.mig cpu:x86-cpu:1:bad pci0/net:virtio-net:1:net1 pci0/net2:virtio-net:3:net2 disk0:virtio-blk:1:disk
"$TOOLS/migstream-validate" --schema s.json bad.mig
