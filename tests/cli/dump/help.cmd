# --help on stdout with exit 0; --version names the tool, library and format.
set -o pipefail
"$TOOLS/migstream-dump" --help | head -n 3
"$TOOLS/migstream-dump" --version | grep -Ex "migstream-dump \(libmigstream [0-9]+\.[0-9]+\.[0-9]+, format 1\.[0-9]+\)" >/dev/null && echo "version ok"
