# OLD's schema set against NEW's streams: mixed kinds compare too.
cat >old.json <<'END'
{"migstream_schema": 1,
 "format": {"minor": 1},
 "devices": [
  {"schema": "x86-cpu", "version": 1,
   "fields": [{"name": "rip", "type": "uint"},
              {"name": "rax", "type": "uint"},
              {"name": "flags", "type": "array", "items": {"type": "bool"}},
              {"name": "regs", "type": "map",
               "fields": [{"name": "cr0", "type": "uint"}, {"name": "efer", "type": "uint"}]}]},
  {"schema": "virtio-net", "version": 2, "min_version": 1,
   "fields": [{"name": "mac", "type": "bytes"},
              {"name": "queues", "type": "uint", "required": false, "since": 2}]}]}
END
. "$(dirname "$0")/lib.sh"
state net '{"mac": "525400123456", "queues": 2, "mtu": 9000}'
stream new.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net
"$TOOLS/migstream-compat" old.json new.mig
