# A page as JSON: vga.vram page 3 holds one byte 0x55 at offset 17.
"$TOOLS/migstream-dump" --json --page 1:0x3 "$SAMPLES/basic.mig" >page.json || exit
python3 -c "
import json
head, p = [json.loads(x) for x in open(\"page.json\")]
assert head[\"kind\"] == \"output\" and head[\"schema_version\"] == 1
data = bytes.fromhex(p.pop(\"data\"))
assert len(data) == 4096 and data[17] == 0x55 and data.count(0) == 4095
print(json.dumps(p, sort_keys=True))
"
