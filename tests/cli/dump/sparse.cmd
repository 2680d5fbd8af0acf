# Hand-made stream: final page states count missing pages apart from ZERO, a
# device sent twice counts once per instance, a page sent twice twice in "sent".
python3 "$(dirname "$0")/../validate/mkstreams.py" sparse sparse.mig || exit
"$TOOLS/migstream-dump" sparse.mig
