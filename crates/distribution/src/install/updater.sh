#!/bin/sh
# Installs the vupdate updater on this machine from the distribution at
# @DISTRIBUTION_URL@ (served by it at /install/updater.sh):
#
#   curl -fsSL @DISTRIBUTION_URL@/install/updater.sh | VUPDATE_ENROLMENT_TOKEN=TOKEN sh -s -- [--services a,b-role]
#
# The enrolment token comes in the environment, where `ps` does not show it (`--token
# TOKEN` works too, but any user of the machine can read it in `ps` while this runs).
# A distribution with a self-signed certificate is reached with its key pinned: curl's
# `--pinnedpubkey sha256//... -k` for the script, and this script passes the pin on
# (`--pinned-public-key`, default: the one of the distribution that served it) to every
# download and to the updater's config (`pinnedPublicKey`).
#
# It downloads the updater binary for this machine's architecture, checks its SHA-256
# against the distribution's, and runs `vupdate updater install` with the other
# arguments (`--help` lists them): enrolment, a system user, /etc/vupdate/updater.yaml and
# the access token (0600), the systemd unit, started. Nothing is written before the
# download is verified and the token accepted; running it again changes nothing.
set -eu

distribution='@DISTRIBUTION_URL@'
pin='@PINNED_PUBLIC_KEY@'
say() { printf 'vupdate install: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

token=${VUPDATE_ENROLMENT_TOKEN:-}
count=$#
while [ "$count" -gt 0 ]; do
    arg=$1
    shift
    count=$((count - 1))
    case $arg in
        --token)
            [ "$count" -gt 0 ] || die "--token needs a value (the enrolment token an administrator issued)"
            token=$1
            shift
            count=$((count - 1))
            ;;
        --token=*) token=${arg#--token=} ;;
        --distribution-url)
            [ "$count" -gt 0 ] || die "--distribution-url needs a value"
            distribution=$1
            shift
            count=$((count - 1))
            ;;
        --distribution-url=*) distribution=${arg#--distribution-url=} ;;
        --pinned-public-key)
            [ "$count" -gt 0 ] || die "--pinned-public-key needs a value (sha256//...)"
            pin=$1
            shift
            count=$((count - 1))
            ;;
        --pinned-public-key=*) pin=${arg#--pinned-public-key=} ;;
        *) set -- "$@" "$arg" ;;
    esac
done
[ -n "$token" ] || die "give the enrolment token in VUPDATE_ENROLMENT_TOKEN (mutation issueEnrolmentToken, or the dashboard, prints the whole line)"

command -v curl >/dev/null 2>&1 || die "curl is needed and not installed"
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
else
    die "sha256sum (coreutils) or shasum is needed to check the download"
fi

arch=$(uname -m)
work=$(mktemp -d "${TMPDIR:-/tmp}/vupdate-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# The token goes in a header file, not on curl's command line, where `ps` would show it.
umask 077
printf 'Authorization: Bearer %s\n' "$token" >"$work/auth"

# A pinned key is trusted alone (-k: no authority vouches for a self-signed certificate).
set -- ${pin:+--pinned-public-key "$pin"} "$@"
pinning=
[ -z "$pin" ] || pinning="--pinnedpubkey $pin -k"

# fetch PATH FILE: GET the distribution's PATH into FILE, or stop with its reason.
fetch() {
    # shellcheck disable=SC2086 # $pinning is two options or none.
    status=$(curl -sS --proto '=http,https' $pinning -H "@$work/auth" -o "$2" -w '%{http_code}' \
        "$distribution$1") || die "cannot reach the distribution at $distribution (see curl's message above); nothing was installed"
    if [ "$status" != 200 ]; then
        reason=$(sed -n 's/.*"message" *: *"\([^"]*\)".*/\1/p' "$2" 2>/dev/null | head -n 1)
        die "${reason:-the distribution answered HTTP $status to $1} (HTTP $status); nothing was installed"
    fi
}

fetch "/install/updater.sha256?arch=$arch" "$work/vupdate.sha256"
expected=$(cut -c 1-64 "$work/vupdate.sha256")
fetch "/install/updater?arch=$arch" "$work/vupdate"
actual=$(sha256 "$work/vupdate")
[ "$expected" = "$actual" ] ||
    die "checksum mismatch: the distribution names $expected, the download is $actual; nothing was installed"
chmod 0755 "$work/vupdate"
say "downloaded vupdate for $arch (sha256 $actual)"

VUPDATE_ENROLMENT_TOKEN=$token "$work/vupdate" updater install --distribution-url "$distribution" "$@"
