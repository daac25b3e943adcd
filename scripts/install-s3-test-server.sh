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
stamp="$venv/vupdate-pins.txt"

if [[ -n "${VUPDATE_TEST_S3_URL:-}" ]]; then
    exit 0
fi
if [[ -x "$venv/bin/moto_server" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$(printf '%s\n' "${pins[@]}")" ]]; then
    exit 0
fi

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing python3 and venv (for the S3 stand-in)" >&2
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
echo "installing moto[s3]==$version and its server into $venv (S3 stand-in for the replica tests)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
printf '%s\n' "${pins[@]}" >"$venv/constraints.txt"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    --constraint "$venv/constraints.txt" "moto[s3]==$version" Flask flask-cors
# Anything unpinned that pip pulled in fails here, so a new dependency is noticed.
if extra="$("$venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel |
    grep -vixF -f "$venv/constraints.txt")"; then
    echo "unpinned packages in $venv: $extra (add them to pins in $0)" >&2
    exit 1
fi
"$venv/bin/moto_server" --help >/dev/null
cp "$venv/constraints.txt" "$stamp"
