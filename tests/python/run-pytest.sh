#!/bin/sh
# Meson test: runs one file of the Python package's pytest suite
# (tests/python/) with the interpreter the package was built for, the
# package imported from the build tree (PYTHONPATH, set by meson.build).
# Skips (77) when that interpreter has no pytest (Debian: python3-pytest).
# In a sanitizer build the extension needs the ASan runtime loaded first:
# MS_PYTEST_PRELOAD names it, and it goes into LD_PRELOAD for the run.
#
# usage: run-pytest.sh PYTHON TEST_FILE
set -u
py=${1:?python}
file=${2:?test file}

if ! "$py" -c 'import pytest' >/dev/null 2>&1; then
    echo "pytest is not installed for $py (Debian: python3-pytest): skipped"
    exit 77
fi
if [ -n "${MS_PYTEST_PRELOAD:-}" ]; then
    LD_PRELOAD="$MS_PYTEST_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}"
    export LD_PRELOAD
fi
# No cache or bytecode in the source tree; skips listed with their reason.
exec "$py" -m pytest -p no:cacheprovider -q -rs "$file"
