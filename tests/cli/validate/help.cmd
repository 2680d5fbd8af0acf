# --help on stdout with exit 0; --version names the tool, library and format.
set -o pipefail
"$TOOLS/migstream-validate" --help | head -n 2
"$TOOLS/migstream-validate" --version | grep -Ex "migstream-validate \(libmigstream [0-9]+\.[0-9]+\.[0-9]+, format 1\.[0-9]+\)" >/dev/null && echo "version ok"
