#!/usr/bin/env bash
# Installs the MongoDB stand-in the store's conformance tests run against when no real
# server is at hand: nx-27017 (PyPI; a MongoDB wire-protocol server over SQLite), in its own
# virtualenv under ~/.cache/vupdate/nx-27017, where the tests look for it.
# Nothing to do when VUPDATE_TEST_MONGODB_URL is set, or `mongod` or `nx-27017` is on PATH.
# Idempotent, and quiet when everything is there.
set -euo pipefail

version=0.8.1
# The whole set, exact versions: nx-27017 itself only bounds its dependencies (neosqlite
# <2, pymongo <5), and neosqlite decides query and TTL behaviour. Change a pin here and
# existing venvs are reinstalled (the list is stamped into the venv).
pins=(
    "nx-27017==$version"
    "neosqlite==1.17.2"
    "pymongo==4.20.1"
    "dnspython==2.9.2"
)
venv="${VUPDATE_NX27017_VENV:-$HOME/.cache/vupdate/nx-27017}"
stamp="$venv/vupdate-pins.txt"

if [[ -n "${VUPDATE_TEST_MONGODB_URL:-}" ]] || command -v mongod >/dev/null || command -v nx-27017 >/dev/null; then
    exit 0
fi
if [[ -x "$venv/bin/nx-27017" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$(printf '%s\n' "${pins[@]}")" ]]; then
    exit 0
fi

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing python3 and venv (for the MongoDB stand-in)" >&2
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
echo "installing ${pins[*]} into $venv (MongoDB stand-in for the store tests)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
printf '%s\n' "${pins[@]}" >"$venv/constraints.txt"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    --constraint "$venv/constraints.txt" "nx-27017==$version"
# Anything unpinned that pip pulled in fails here, so a new dependency is noticed.
if extra="$("$venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel |
    grep -vxF -f "$venv/constraints.txt")"; then
    echo "unpinned packages in $venv: $extra (add them to pins in $0)" >&2
    exit 1
fi
"$venv/bin/nx-27017" --help >/dev/null
cp "$venv/constraints.txt" "$stamp"
