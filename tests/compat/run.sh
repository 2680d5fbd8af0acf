#!/usr/bin/env bash
# The stream-compatibility test (tests/compat/README.md):
#
#   run.sh COMPAT_DIR TOOLS_DIR GEN_GOLDEN
#
# For each frozen set COMPAT_DIR/v*/, whose MANIFEST lists its streams:
#   - each stream's SHA-256 is the one in MANIFEST: the file was not edited;
#   - gen-golden, given the set's fixed inputs, writes the same bytes. For a
#     stream marked zstd, whose bytes depend on libzstd's version, a libzstd
#     other than the one MANIFEST records may give other bytes: then the
#     stream must decode to the same records (gen-golden same-content), and
#     the test says so;
#   - migstream-validate finds no error;
#   - migstream-dump --json prints exactly NAME.dump.jsonl;
#   - migstream-replay --view writes files whose SHA-256 are in
#     NAME.replay.sha256 (every file but manifest.json and the device-*.json
#     renderings).
# For each migration in parts a set's MANIFEST lists ("migration NAME
# PART..."; gen-golden migrations lists the same), its parts read as one
# (FORMAT.md section 2.1):
#   - migstream-validate finds no error;
#   - migstream-dump --json prints exactly NAME.dump.jsonl;
#   - migstream-replay --view writes the files of NAME.replay.sha256.
# For COMPAT_DIR/future/ (hand-made streams of a later format, mkfuture.py):
#   - mkfuture.py writes the same bytes;
#   - migstream-dump --json prints exactly NAME.dump.jsonl, and
#     migstream-validate exactly NAME.validate;
#   - readable streams replay to NAME.replay.sha256;
#   - every line of future/EXPECT holds: the tool's exit status, and a text
#     its output must contain (what the unknowns are reported as, what a
#     refusal names).
#
# UPDATE=1 writes the expected outputs from the tools being tested: it
# replaces NAME.dump.jsonl and NAME.validate (after a deliberate change of
# the tools' output; review the diff) and creates a missing MANIFEST or
# NAME.replay.sha256, but never replaces those, nor any stream.
set -u
here=$(cd "$1" && pwd) tools=$(cd "$2" && pwd)
gen=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
update=${UPDATE:-0}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0 notes=""
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# Compares file $2 (expected, in the corpus) with $3 (actual); $1 names
# the check. With UPDATE=1, $2 is replaced when $4 is "replace", created
# when missing otherwise.
expect_file() {
    local what=$1 want=$2 got=$3 mode=${4:-replace}
    if [ "$update" = 1 ] && { [ "$mode" = replace ] || [ ! -e "$want" ]; }; then
        cmp -s "$want" "$got" 2>/dev/null || cp "$got" "$want"
    fi
    if [ ! -e "$want" ]; then
        bad "$what: ${want#"$here"/} is missing (UPDATE=1 writes it)"
    elif cmp -s "$want" "$got"; then
        ok "$what"
    else
        bad "$what: differs from ${want#"$here"/}"
        diff -u "$want" "$got" | head -20 | cut -c1-300 | sed 's/^/    /'
    fi
}

# SHA-256 of what migstream-replay writes for stream $1 (the parts of a
# migration: $1 and the arguments after $2), into file $2.
replay_digests() {
    local out=$work/replay first=$1 sums=$2
    shift 2
    rm -rf "$out"
    "$tools/migstream-replay" -q --view -o "$out" "$first" "$@" >"$work/replay.log" 2>&1 || return 1
    (cd "$out" && find . -type f ! -name manifest.json ! -name 'device-*.json' | sed 's|^\./||' |
        LC_ALL=C sort | xargs sha256sum) >"$sums"
}

# ---------------------------------------------------------- frozen sets
zstd_now=$("$gen" zstd-version) || { echo "gen-golden zstd-version failed"; exit 1; }
for setdir in "$here"/v*/; do
    setdir=${setdir%/} set=$(basename "$setdir")
    manifest=$setdir/MANIFEST
    fresh=$work/fresh-$set
    mkdir "$fresh"
    "$gen" write "$set" "$fresh" || { bad "$set: gen-golden write failed"; continue; }
    "$gen" list "$set" >"$work/list-$set"

    # A new set: its streams were just written by "gen-golden write".
    if [ ! -e "$manifest" ] && [ "$update" = 1 ]; then
        {
            echo "# Golden streams of set $set, written by gen-golden (see ../README.md)."
            echo "# Frozen: never edit, replace or regenerate these files."
            echo "# zstd: the libzstd version the zstd-marked streams were written with."
            echo "zstd $zstd_now"
            while read -r name enc; do
                echo "stream $name $enc $(sha256sum <"$setdir/$name" | cut -d' ' -f1)"
            done <"$work/list-$set"
            "$gen" migrations "$set" | sed 's/^/migration /'
        } >"$manifest"
    fi
    [ -e "$manifest" ] || { bad "$set: no MANIFEST"; continue; }
    zstd_then=$(awk '$1 == "zstd" {print $2}' "$manifest")

    # The generator's list and the manifest's must agree: a stream is
    # neither dropped from a set nor added to it unnoticed.
    diff <(awk '$1 == "stream" {print $2, $3}' "$manifest") "$work/list-$set" >"$work/d" &&
        ok "$set: gen-golden writes the streams MANIFEST lists" ||
        { bad "$set: gen-golden's streams differ from MANIFEST's"; sed 's/^/    /' "$work/d"; }

    while read -r kind name enc sum; do
        [ "$kind" = stream ] || continue
        stream=$setdir/$name base=$setdir/${name%.mig}
        if [ "$(sha256sum <"$stream" | cut -d' ' -f1)" = "$sum" ]; then
            ok "$set/$name: unchanged since frozen"
        else
            bad "$set/$name: SHA-256 is not MANIFEST's: a golden stream was edited"
        fi

        if [ ! -e "$fresh/$name" ]; then
            bad "$set/$name: gen-golden did not write it"
        elif cmp -s "$stream" "$fresh/$name"; then
            ok "$set/$name: the writer reproduces it byte for byte"
        elif [ "$enc" = zstd ] && [ "$zstd_now" != "$zstd_then" ]; then
            if "$gen" same-content "$stream" "$fresh/$name" >"$work/sc" 2>&1; then
                ok "$set/$name: same decoded content (libzstd $zstd_now, frozen with $zstd_then)"
                notes="$notes$set/$name: bytes differ under libzstd $zstd_now (frozen with $zstd_then); content equal\n"
            else
                bad "$set/$name: the writer's output decodes differently"
                sed 's/^/    /' "$work/sc"
            fi
        else
            bad "$set/$name: the writer's output differs from the frozen stream"
            cmp "$stream" "$fresh/$name" | sed 's/^/    /'
        fi

        "$tools/migstream-validate" "$stream" >"$work/v" 2>&1 &&
            ok "$set/$name: migstream-validate: valid" ||
            { bad "$set/$name: migstream-validate"; head -5 "$work/v" | sed 's/^/    /'; }

        "$tools/migstream-dump" --json "$stream" >"$work/dump" 2>"$work/dump.err" ||
            { bad "$set/$name: migstream-dump failed"; sed 's/^/    /' "$work/dump.err"; }
        expect_file "$set/$name: dump --json" "$base.dump.jsonl" "$work/dump"
        # Set v1.0 holds what a format 1.0 reader loads: no required
        # feature, no record type of 1.1 (FORMAT.md section 11.2).
        if [ "$set" = v1.0 ]; then
            if grep -q '"required_features":"0x0000000000000000"' "$work/dump" &&
                ! grep -qE '"type":"(ROUND|OVERLAY)"|"(rounds|overlays)":[1-9]' "$work/dump"; then
                ok "$set/$name: format 1.0 content only"
            else
                bad "$set/$name: uses what format 1.1 added"
            fi
        fi

        if replay_digests "$stream" "$work/sha"; then
            expect_file "$set/$name: replayed files" "$base.replay.sha256" "$work/sha" create
        else
            bad "$set/$name: migstream-replay failed"; sed 's/^/    /' "$work/replay.log"
        fi
    done <"$manifest"

    # Migrations in parts, read whole; file names as the set lists them,
    # so that the outputs do not depend on where the corpus lives.
    "$gen" migrations "$set" >"$work/mig-$set"
    diff <(awk '$1 == "migration" {$1 = ""; sub(/^ /, ""); print}' "$manifest") "$work/mig-$set" \
        >"$work/d" && ok "$set: gen-golden's migrations are MANIFEST's" ||
        { bad "$set: gen-golden's migrations differ from MANIFEST's"; sed 's/^/    /' "$work/d"; }
    while read -r kind name parts; do
        [ "$kind" = migration ] || continue
        read -ra files <<<"$parts"
        (cd "$setdir" && "$tools/migstream-validate" "${files[@]}") >"$work/v" 2>&1 &&
            ok "$set/$name: the parts validate as one migration" ||
            { bad "$set/$name: migstream-validate of the parts"; head -5 "$work/v" | sed 's/^/    /'; }
        (cd "$setdir" && "$tools/migstream-dump" --json "${files[@]}") >"$work/dump" 2>"$work/dump.err" ||
            { bad "$set/$name: migstream-dump of the parts failed"; sed 's/^/    /' "$work/dump.err"; }
        expect_file "$set/$name: dump --json of the parts" "$setdir/$name.dump.jsonl" "$work/dump"
        if (cd "$setdir" && replay_digests "${files[@]:0:1}" "$work/sha" "${files[@]:1}"); then
            expect_file "$set/$name: replayed files of the parts" "$setdir/$name.replay.sha256" \
                "$work/sha" create
        else
            bad "$set/$name: migstream-replay of the parts failed"; sed 's/^/    /' "$work/replay.log"
        fi
    done <"$manifest"
done

# -------------------------------------------------------------- future/
fut=$here/future
mkdir "$work/future"
if python3 "$here/mkfuture.py" "$work/future"; then
    for f in "$work"/future/*.mig; do
        name=$(basename "$f")
        if [ ! -e "$fut/$name" ]; then
            bad "future/$name: mkfuture.py writes it, but it is not in the corpus"
        elif cmp -s "$fut/$name" "$f"; then
            ok "future/$name: mkfuture.py reproduces it"
        else
            bad "future/$name: mkfuture.py writes other bytes"
        fi
    done
else
    bad "mkfuture.py failed"
fi

for stream in "$fut"/*.mig; do
    name=$(basename "$stream") base=${stream%.mig}
    "$tools/migstream-dump" --json "$stream" >"$work/dump" 2>"$work/dump.err"
    echo $? >"$work/dump.exit"
    expect_file "future/$name: dump --json" "$base.dump.jsonl" "$work/dump"
    "$tools/migstream-validate" "$stream" >"$work/validate" 2>"$work/validate.err"
    echo $? >"$work/validate.exit"
    expect_file "future/$name: validate" "$base.validate" "$work/validate"
    rm -rf "$work/replay"
    "$tools/migstream-replay" -q --view -o "$work/replay" "$stream" >"$work/replay.out" 2>"$work/replay.err"
    echo $? >"$work/replay.exit"
    if [ "$(cat "$work/replay.exit")" = 0 ]; then
        replay_digests "$stream" "$work/sha"
        expect_file "future/$name: replayed files" "$base.replay.sha256" "$work/sha" create
    fi

    # future/EXPECT: STREAM TOOL EXIT TEXT (TEXT: the rest of the line)
    lines=0
    while read -r s tool code text; do
        [ "$s" = "$name" ] || continue
        lines=$((lines + 1))
        got=$(cat "$work/$tool.exit")
        if [ "$got" != "$code" ]; then
            bad "future/$name: migstream-$tool exits $got, expected $code"
        elif [ -z "$text" ]; then
            ok "future/$name: migstream-$tool exits $code"
        elif cat "$work/$tool" "$work/$tool.err" "$work/$tool.out" 2>/dev/null |
                grep -qF -- "$text"; then
            ok "future/$name: migstream-$tool exits $code and says: $text"
        else
            bad "future/$name: migstream-$tool does not say: $text"
            cat "$work/$tool.err" 2>/dev/null | head -3 | sed 's/^/    /'
        fi
    done < <(grep -v '^#' "$fut/EXPECT")
    [ $lines -gt 0 ] || bad "future/$name: no line in future/EXPECT"
done

[ -n "$notes" ] && printf "note: %b" "$notes"
echo "$pass passed, $fail failed"
[ $fail = 0 ] && [ $pass -gt 0 ]
