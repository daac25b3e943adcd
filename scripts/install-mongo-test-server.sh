#!/usr/bin/env bash
# Installs the MongoDB stand-in the store's conformance tests run against when no real
# server is at hand: nx-27017 (PyPI; a MongoDB wire-protocol server over SQLite), in its own
# virtualenv under ~/.cache/vupdate/nx-27017, where the tests look for it.
# Nothing to do when VUPDATE_TEST_MONGODB_URL is set, or `mongod` or `nx-27017` is on PATH.
# Idempotent, and quiet when everything is there.
set -euo pipefail

version=0.8.1
venv="${VUPDATE_NX27017_VENV:-$HOME/.cache/vupdate/nx-27017}"

if [[ -n "${VUPDATE_TEST_MONGODB_URL:-}" ]] || command -v mongod >/dev/null || command -v nx-27017 >/dev/null; then
    exit 0
fi
if [[ -x "$venv/bin/nx-27017" ]] && [[ "$("$venv/bin/pip" show nx-27017 2>/dev/null | sed -n 's/^Version: //p')" == "$version" ]]; then
    exit 0
fi

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing python3 and venv (for the MongoDB stand-in)" >&2
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
echo "installing nx-27017 $version into $venv (MongoDB stand-in for the store tests)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "nx-27017==$version"
"$venv/bin/nx-27017" --help >/dev/null
