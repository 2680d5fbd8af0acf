# NEW's virtio-net is version 1.
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
sed -e 's|"version": 2, "min_version": 1|"version": 1, "min_version": 1|' -e 's|"required": false, "since": 2}|"required": false}|' old.json >new.json
"$TOOLS/migstream-compat" old.json new.json
