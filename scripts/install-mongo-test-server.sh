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

if [[ -n "${VUPDATE_TEST_MONGODB_URL:-}" ]] || command -v mongod >/dev/null || command -v nx-27017 >/dev/null; then
    exit 0
fi
# shellcheck source=lib/pinned-venv.sh
source "$(dirname "$0")/lib/pinned-venv.sh"
pinned_venv "$venv" nx-27017 "the MongoDB stand-in of the store tests" "nx-27017==$version"
