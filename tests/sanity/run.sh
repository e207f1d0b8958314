#!/usr/bin/env bash
# Run `ansible-test sanity` on the pgha.cluster collection, offline apart from PyPI.
#
# How it works
#  1. The collection's files (git ls-files: tracked + untracked-not-ignored; never .venv, .lab,
#     .collections, .git, tests/output or molecule ephemeral dirs) are copied into a temporary
#     tree <tmp>/ansible_collections/pgha/cluster, where ansible-test expects a collection.
#  2. ansible-test runs each sanity test in its own virtual environment (--venv) and bootstraps pip
#     into it with a "get-pip" script that it downloads from a CI file host of Ansible's, which we
#     cannot reach. Its code (ansible_test/_util/target/setup/requirements.py, bootstrap()) first
#     looks for that script in ~/.ansible/test/cache/get_pip_<version>.py and only downloads when
#     the file is missing. So this script downloads the pip wheel ansible-test pins
#     (get_venv_packages() in ansible_test/_internal/python_requirements.py) from PyPI with
#     `pip download`, into .lab/sanity-cache/, and writes a small get_pip_<version>.py in that cache
#     place that runs pip straight from the wheel (pip supports running from its wheel, which is
#     what the real get-pip.py does). The sanity tests' own pinned requirements are then
#     installed by ansible-test from PyPI as usual, and the venvs are reused by later runs.
#  3. shellcheck (a Debian package) is installed with apt-get when missing and we are root.
#  4. ansible-test sanity runs with the project venv's Python (3.11, the controller Python), for
#     --python 3.11 only, with no tests/sanity/ignore-*.txt file (the script refuses if one exists).
#
# Usage: tests/sanity/run.sh [extra ansible-test sanity args, e.g. --test pylint]
# Env:   PYTHON (default .venv/bin/python), KEEP_TMP=1 to keep the temporary tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=/tmp/venvprobe/bin/python
ANSIBLE_TEST="$(dirname "$PY")/ansible-test"
CACHE="$ROOT/.lab/sanity-cache"

if ls "$ROOT"/tests/sanity/ignore-*.txt >/dev/null 2>&1; then
    echo "tests/sanity/ignore-*.txt exists; this project runs sanity with no ignore file" >&2
    exit 2
fi

# The shellcheck program comes from Debian; ansible-test skips that sanity test without it
if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get install -y -q shellcheck || { apt-get update -q && apt-get install -y -q shellcheck; }; } >/dev/null 2>&1 \
            || echo "WARNING: could not install shellcheck; its sanity test will be skipped" >&2
    else
        echo "WARNING: shellcheck is missing (apt-get install shellcheck); its sanity test will be skipped" >&2
    fi
fi

# -- 1. offline pip bootstrap for ansible-test's sanity venvs ---------------------------------
PIP_VERSION="$("$PY" - <<'EOF'
import os
import re
import ansible_test
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
EOF
)"
mkdir -p "$CACHE"
WHEEL="$(ls "$CACHE"/pip-"$PIP_VERSION"-py3-none-any.whl 2>/dev/null || true)"
if [ -z "$WHEEL" ]; then
    "$PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
        "pip==$PIP_VERSION" -d "$CACHE" >/dev/null
    WHEEL="$CACHE/pip-$PIP_VERSION-py3-none-any.whl"
fi
GET_PIP="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
mkdir -p "$(dirname "$GET_PIP")"
if [ ! -f "$GET_PIP" ] || grep -q 'pgha.cluster offline get-pip' "$GET_PIP"; then
    cat >"$GET_PIP" <<EOF
# pgha.cluster offline get-pip replacement, written by tests/sanity/run.sh
import sys

sys.path.insert(0, '$WHEEL')
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(main(['install', '--upgrade', '--force-reinstall', '--find-links', '$CACHE'] + args))
EOF
fi

# -- 2. copy the collection ---------------------------------------------------------------------
TMP="$(mktemp -d /tmp/pgha-sanity.XXXXXX)"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"; }
trap cleanup EXIT
DEST="$TMP/ansible_collections/pgha/cluster"
mkdir -p "$DEST"
cd "$ROOT"
git ls-files -z --cached --others --exclude-standard \
    | grep -zv -E '^(\.venv|\.lab|\.collections|\.git|\.cache|tests/output)/|(^|/)molecule/[^/]+/\.cache/|(^|/)__pycache__/' \
    | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
    | xargs -0 --no-run-if-empty cp -a --parents -t "$DEST"

# ansible-test wants a git tree (or none); give it a throwaway one so that it lists exactly these files
cd "$DEST"
git init -q . && git add -A >/dev/null && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity

# -- 3. run ---------------------------------------------------------------------------------------
START=$(date +%s)
set +e
"$ANSIBLE_TEST" sanity --venv --python 3.11 --color no "$@"
RC=$?
set -e
echo "ansible-test sanity finished with rc=$RC in $(( $(date +%s) - START ))s"
exit $RC
