# A replay directory written before schema_version 2 ("manifest_version": 1:
# sizes and totals as numbers, page states in lower case, flat per-state
# counts) still packs, into the same guest.
"$TOOLS/migstream-replay" -o v1 "$SAMPLES/basic.mig" || exit
python3 - v1/manifest.json <<'PY' || exit
import json, sys
path = sys.argv[1]
m = json.load(open(path))
old = {"manifest_version": 1}
for k, v in m.items():
    if k == "schema_version":
        continue
    if k == "totals":
        v = {"records": int(v["records"]), "bytes": int(v["bytes"]),
             "pages": {s.lower(): int(n) for s, n in v["pages"].items()},
             "devices": int(v["devices"])}
    if k == "regions":
        v = [dict({x: y for x, y in g.items() if x != "final"}, size=int(g["size"]),
                  **{s.lower(): n for s, n in g["final"].items()}) for g in v]
    if k == "devices":
        v = [{("size" if x == "state_size" else x): y for x, y in d.items()} for d in v]
    old[k] = v
json.dump(old, open(path, "w"), indent=2)
PY
grep -E '"(manifest_version|size|data)"' v1/manifest.json
"$TOOLS/migstream-pack" -q -o again.mig v1 || exit
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" again.mig
