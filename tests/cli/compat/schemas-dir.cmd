# A directory of schema files is one set; a CBOR schema file is read too.
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
mkdir new
python3 -c 'import json; d = json.load(open("old.json")); json.dump(dict(d, devices=d["devices"][:1]), open("new/cpu.json", "w")); json.dump(dict(migstream_schema=1, devices=d["devices"][1:]), open("new/net.json", "w"))'
"$TOOLS/migstream-compat" old.json new
