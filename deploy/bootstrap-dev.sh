#!/usr/bin/env bash
# Set up a development machine for Postern: Debian packages, then .venv.
#
# Run by `make bootstrap` (and so by `make test` and `make demo`). Safe to run
# again: it installs only what is missing. Every Python package comes from
# requirements.lock (exact versions with their SHA-256 hashes, written by
# `make lock`), installed with pip's hash checking. When the lock, the
# packaging (setup.cfg, pyproject.toml) or the set of top-level packages
# changes, .venv is built anew, so that it holds exactly what the lock says.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages that the tests and the demo use. tests/conftest.py
# (DEBIAN_PACKAGES) names the package of each tool; keep the two in step.
DEBIAN_PACKAGES=(tor haproxy chromium firefox-esr gnupg python3-venv mat2 systemd strace e2fsprogs mount postgresql)

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

# requirements.lock is resolved for Python 3.11, so python3.11 comes first.
find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    die "Python 3.11 or newer is needed (install Debian's python3.11 and python3.11-venv)"
}

new_venv() {
    local python
    python=$(find_python)
    log "creating $VENV with $python ($("$python" -V 2>&1))"
    rm -rf "$VENV"
    "$python" -m venv "$VENV" || die "'$python -m venv' failed (on Debian, install python3-venv)"
}

if [[ -x $VENV/bin/python ]] && ! python_ok "$VENV/bin/python"; then
    die "$VENV uses Python $("$VENV/bin/python" -V 2>&1); run 'make clean' and try again"
fi

[[ -f requirements.lock ]] || die "requirements.lock is missing (make lock writes it)"

# The editable install records the top-level packages that exist when it runs
# (they are what importlib.metadata and the import hook know), so the stamp
# holds that list as well as the hashes of the lock and the packaging files.
packages=$(shopt -s nullglob; printf '%s\n' */__init__.py)
stamp_now=$(sha256sum requirements.lock setup.cfg pyproject.toml; printf '%s\n' "$packages")
if [[ ! -x $VENV/bin/python || ! -f $STAMP || $(<"$STAMP") != "$stamp_now" ]]; then
    # A venv installed from an older lock may hold packages the new lock
    # dropped; only a new venv is sure to hold exactly what the lock says.
    new_venv
    # Metadata an older install left in the working tree would shadow the new install's
    # (importlib.metadata finds it first when the tests run from here).
    rm -rf ./*.egg-info
    log "installing the locked dependencies (hash-checked) into $VENV"
    # pip itself, setuptools and wheel are in the lock too (pip-compile
    # --allow-unsafe --all-build-deps), so nothing installed here is unpinned.
    # Compiled at install time (about 9 of the install's 34 s here), not by the first
    # process that imports each module: some locked packages hold source that compiles with
    # warnings (mozinfo's invalid escapes), which the suite turns into errors (setup.cfg).
    "$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r requirements.lock
    log "installing Postern (editable, no dependencies of its own) into $VENV"
    # No build isolation: the build backend is the locked setuptools already
    # in the venv, not whatever release an isolated build would fetch.
    "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
    if ! problems=$("$VENV/bin/python" -m pip check); then
        die "requirements.lock does not satisfy the packaging (run make lock): $problems"
    fi
    printf '%s\n' "$stamp_now" >"$STAMP"
fi
