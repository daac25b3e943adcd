# Sourced by the scripts that install the tests' Python stand-ins (MongoDB, S3).
#
#   pinned_venv VENV PROGRAM WHAT REQUIREMENT...
#
# Makes VENV hold exactly the caller's `pins` array (exact versions): nothing to do when
# VENV/bin/PROGRAM exists and VENV was made from the same pins (they are stamped into it);
# otherwise VENV is made anew, REQUIREMENT... installed with the pins as constraints, and
# anything pip pulled in unpinned fails the install, so a new dependency is noticed. WHAT
# says what the stand-in is for in the messages.
pinned_venv() {
    local venv=$1 program=$2 what=$3
    shift 3
    local stamp="$venv/vupdate-pins.txt"
    if [[ -x "$venv/bin/$program" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$(printf '%s\n' "${pins[@]}")" ]]; then
        return 0
    fi
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo "installing python3 and venv (for $what)" >&2
        apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    echo "installing $* into $venv ($what)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    printf '%s\n' "${pins[@]}" >"$venv/constraints.txt"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --constraint "$venv/constraints.txt" "$@"
    local extra
    # Case-insensitive: pip freeze may spell a name otherwise than the pin.
    if extra="$("$venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel |
        grep -vixF -f "$venv/constraints.txt")"; then
        echo "unpinned packages in $venv: $extra (add them to pins in ${BASH_SOURCE[1]})" >&2
        return 1
    fi
    "$venv/bin/$program" --help >/dev/null
    cp "$venv/constraints.txt" "$stamp"
}
