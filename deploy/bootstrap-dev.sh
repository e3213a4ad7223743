#!/usr/bin/env bash
# Set up a development machine for Postern: Debian packages, then .venv.
#
# Run by `make bootstrap` (and so by `make test` and `make demo`). Safe to run
# again: it installs only what is missing and reinstalls the project into
# .venv only when setup.cfg or pyproject.toml changed since the last install,
# or a top-level package was added or removed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages that the tests and the demo use. tests/conftest.py
# (DEBIAN_PACKAGES) names the package of each tool; keep the two in step.
DEBIAN_PACKAGES=(tor chromium firefox-esr gnupg python3-venv mat2 systemd)

VENV=.venv
STAMP="$VENV/.postern-stamp"

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    # dpkg -s also reports packages that were removed but not purged, so check
    # the status line rather than the exit code alone.
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]]; then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y "${missing[@]}"
    else
        log "missing Debian packages: ${missing[*]}"
        log "install them with: sudo apt-get install ${missing[*]}"
        log "(tests that need them will fail until then)"
    fi
fi

# --- Python ----------------------------------------------------------------
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

if [[ -x $VENV/bin/python ]] && ! python_ok "$VENV/bin/python"; then
    die "$VENV uses Python $("$VENV/bin/python" -V 2>&1); run 'make clean' and try again"
fi

if [[ ! -x $VENV/bin/python ]]; then
    python=
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
            python=$(command -v "$candidate")
            break
        fi
    done
    [[ -n $python ]] || die "Python 3.11 or newer is needed (install Debian's python3.11 and python3.11-venv)"
    log "creating $VENV with $python ($("$python" -V 2>&1))"
    rm -rf "$VENV"
    "$python" -m venv "$VENV" || die "'$python -m venv' failed (on Debian, install python3-venv)"
    rm -f "$STAMP"
fi

# The editable install records the top-level packages that exist when it runs
# (they are what importlib.metadata and the import hook know), so the stamp
# holds that list and a package gaining or losing its __init__.py reinstalls.
packages=$(shopt -s nullglob; printf '%s\n' */__init__.py)
if [[ ! -f $STAMP || setup.cfg -nt $STAMP || pyproject.toml -nt $STAMP
      || $(<"$STAMP") != "$packages" ]]; then
    log "installing Postern and its test tools into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
    printf '%s\n' "$packages" >"$STAMP"
fi
