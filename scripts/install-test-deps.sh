#!/usr/bin/env bash
# Installs what the tests need on a fresh machine; idempotent and quiet when all is there.
set -euo pipefail

if ! command -v git >/dev/null; then
    echo "installing git" >&2
    apt-get update -qq && apt-get install -y -qq git >/dev/null
fi

# The end-to-end tests run a Python sample service (examples/hello-service) and serve Git
# over HTTP with a small Python server.
if ! command -v python3 >/dev/null; then
    echo "installing python3" >&2
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi

# A MongoDB-wire-compatible server for the store's MongoDB conformance run (no mongod is
# in this machine's package registries); skipped when one is already installed.
"$(dirname "$0")/install-mongo-test-server.sh"
# An S3 stand-in (moto's server) for the image object store and the replica scenario.
"$(dirname "$0")/install-s3-test-server.sh"

# The dashboard: Node to build and test it, Debian's Chromium for its browser tests
# (Playwright drives it; no browser is downloaded).
"$(dirname "$0")/install-node.sh"
if ! command -v chromium >/dev/null; then
    echo "installing chromium (Debian)" >&2
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The install tests check the generated units with `systemd-analyze verify` and the
# cloud-init user-data with `cloud-init schema` (Debian's packages; no systemd has to run).
if ! command -v systemd-analyze >/dev/null; then
    echo "installing systemd (for systemd-analyze)" >&2
    apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
if ! command -v cloud-init >/dev/null; then
    echo "installing cloud-init (for cloud-init schema)" >&2
    apt-get update -qq && apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
fi
