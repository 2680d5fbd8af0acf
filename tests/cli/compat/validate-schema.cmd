# migstream-validate --schema: the sample's device states conform.
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
"$TOOLS/migstream-validate" --schema s.json "$SAMPLES/basic.mig"
