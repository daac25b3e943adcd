#!/usr/bin/env bash
# Installs the S3 stand-in the object-store and replica tests run against: moto's server
# (PyPI; an in-memory S3 with conditional writes), in its own virtualenv under
# ~/.cache/vupdate/moto, where the tests look for it. Nothing to do when
# VUPDATE_TEST_S3_URL is set (a real S3-compatible server). Idempotent, and quiet when
# everything is there.
set -euo pipefail

version=5.2.6
# The whole set, exact versions (moto[s3] and the server's Flask): change a pin here and
# existing venvs are reinstalled (the list is stamped into the venv).
pins=(
    "moto==$version"
    "blinker==1.9.0" "boto3==1.44.18" "botocore==1.44.18" "certifi==2026.10.19.post1"
    "cffi==2.1.1" "charset-normalizer==3.5.3" "click==8.5.1" "cryptography==51.0.1"
    "Flask==3.1.3" "flask-cors==6.0.5" "idna==3.21" "itsdangerous==2.2.0" "Jinja2==3.1.6"
    "jmespath==1.1.0" "MarkupSafe==3.0.4" "py-partiql-parser==0.6.3" "pycparser==3.12"
    "python-dateutil==2.9.0.post0" "PyYAML==6.0.4" "requests==2.34.2" "responses==0.26.3"
    "s3transfer==0.19.3" "six==1.17.0" "urllib3==2.8.0" "Werkzeug==3.1.9" "xmltodict==1.0.4"
)
venv="${VUPDATE_MOTO_VENV:-$HOME/.cache/vupdate/moto}"

if [[ -n "${VUPDATE_TEST_S3_URL:-}" ]]; then
    exit 0
fi
# shellcheck source=lib/pinned-venv.sh
source "$(dirname "$0")/lib/pinned-venv.sh"
pinned_venv "$venv" moto_server "the S3 stand-in of the replica tests" "moto[s3]==$version" Flask flask-cors
