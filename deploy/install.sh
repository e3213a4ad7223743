#!/usr/bin/env bash
# Install or upgrade the Postern server on Debian 12 (bookworm). Run as root from a checkout:
#
#     sudo deploy/install.sh [--root-pub FILE]
#
# It installs the Debian packages (python3, python3-venv, tor, haproxy), stops Debian's default
# tor instance (it runs a SOCKS port this server must not have) and haproxy instance (Postern
# runs its own front, postern-front.service), creates the system users
# `postern` (the apps) and `postern-tor` (tor), copies the source to /opt/postern/src, builds
# the virtualenv /opt/postern/venv from requirements.lock (exact versions, hash-checked),
# installs /etc/postern/torrc, /etc/postern-front/haproxy.cfg, /etc/postern/postern.env (only
# if absent: it is the operator's) and the systemd units, and enables postern.target. With
# --root-pub FILE (the team root public key, root.pub from the station) it initializes the
# data directory /var/lib/postern on the first run. Running it again upgrades the code and
# changes nothing else: every step checks before it acts (docs/operations.md, "Upgrade").
#
# With --data-device DEV (a block device: the opened LUKS volume, /dev/mapper/postern-data),
# the data directory gets a file system of its own on it, made and mounted with the options of
# deploy/datafs.conf (ext4 without a journal, 128-byte inodes, noatime: docs/operations.md,
# "The data file system"), listed in /etc/fstab. A device that holds a file system already
# is used only if it has those properties; nothing on it is ever formatted again.
#
# For tests and packaging: --root DIR installs into DIR instead of / (users go into DIR/etc
# through useradd --prefix, systemctl is not called), --skip-packages leaves apt alone and
# --skip-venv does not build the virtualenv (it needs PyPI).
set -euo pipefail
umask 022

ROOT=""
ROOT_PUB=""
DATA_DEVICE=""
SKIP_PACKAGES=0
SKIP_VENV=0
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --root-pub) ROOT_PUB="${2:?--root-pub needs a file}"; shift 2 ;;
        --data-device) DATA_DEVICE="${2:?--data-device needs a block device}"; shift 2 ;;
        --skip-packages) SKIP_PACKAGES=1; shift ;;
        --skip-venv) SKIP_VENV=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo deploy/install.sh)"
[ -f "$SOURCE/setup.cfg" ] && [ -f "$SOURCE/deploy/torrc" ] || die "$SOURCE is not a Postern checkout"
if [ -n "$ROOT" ]; then
    ROOT="$(cd "$ROOT" && pwd)" || die "--root $ROOT does not exist"
    [ "$ROOT" != "/" ] || ROOT=""
fi
if [ -z "$ROOT" ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    [ "${ID:-}" = "debian" ] && [ "${VERSION_ID:-}" = "12" ] \
        || die "this script is for Debian 12; this is ${PRETTY_NAME:-an unknown system}"
fi
if [ -n "$ROOT_PUB" ]; then
    [ -f "$ROOT_PUB" ] || die "--root-pub $ROOT_PUB does not exist"
    ROOT_PUB="$(cd "$(dirname "$ROOT_PUB")" && pwd)/$(basename "$ROOT_PUB")"
fi

OPT="$ROOT/opt/postern"
ETC="$ROOT/etc/postern"
UNITS="$ROOT/etc/systemd/system"
DATA="$ROOT/var/lib/postern"
SERVICES=(postern-tor.service postern-source.service postern-api.service postern-front.service postern-onion.service)
UNIT_FILES=("${SERVICES[@]}" postern.target)

# -- 1. Debian packages ------------------------------------------------------------------------
if [ "$SKIP_PACKAGES" -eq 0 ]; then
    say "Debian packages: python3 python3-venv tor haproxy"
    missing=()
    for package in python3 python3-venv tor haproxy; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi
if [ -z "$ROOT" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    # Debian's own tor instance listens on a SOCKS port: a way out for a compromised app.
    for unit in tor.service tor@default.service; do
        if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit"; then
            say "stopping and disabling Debian's default $unit (Postern runs its own tor)"
            systemctl disable --now "$unit" || true
        fi
    done
    systemctl mask --quiet tor@default.service || true
    # Debian's haproxy instance has a stats socket and logs to syslog: Postern's front has
    # neither (postern-front.service runs HAProxy with /etc/postern-front/haproxy.cfg).
    if systemctl is-enabled --quiet haproxy.service 2>/dev/null || systemctl is-active --quiet haproxy.service; then
        say "stopping and disabling Debian's default haproxy.service (Postern runs its own front)"
        systemctl disable --now haproxy.service || true
    fi
    systemctl mask --quiet haproxy.service || true
fi

# -- 2. users ----------------------------------------------------------------------------------
add_user() {  # name home
    local name="$1" home="$2" prefix=()
    [ -n "$ROOT" ] && prefix=(--prefix "$ROOT")
    if ! grep -q "^$name:" "$ROOT/etc/group"; then
        groupadd "${prefix[@]}" --system "$name"
    fi
    if ! grep -q "^$name:" "$ROOT/etc/passwd"; then
        say "system user $name"
        useradd "${prefix[@]}" --system --gid "$name" --home-dir "$home" --no-create-home \
            --shell /usr/sbin/nologin --comment "Postern ($name)" "$name"
    fi
}
add_user postern-tor /var/lib/postern-tor
add_user postern /var/lib/postern
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group"; }
POSTERN_UID="$(uid_of postern)"
POSTERN_GID="$(gid_of postern)"

# -- 3. code -----------------------------------------------------------------------------------
say "code: $SOURCE -> $OPT/src"
mkdir -p "$ROOT/opt"
install -d -m 0755 -o 0 -g 0 "$OPT"
staging="$OPT/.src.new"
rm -rf "$staging"
install -d -m 0755 -o 0 -g 0 "$staging"
tar -C "$SOURCE" -cf - --exclude=./.git --exclude=./.venv --exclude=./demo-data \
    --exclude='__pycache__' --exclude=./.mypy_cache --exclude=./.ruff_cache \
    --exclude=./.pytest_cache --exclude='*.egg-info' --exclude=./build --exclude=./dist . \
    | tar -C "$staging" --no-same-owner -xf -
chown -R 0:0 "$staging"
chmod -R u+rwX,go+rX,go-w "$staging"
if [ -d "$OPT/src" ] && diff -r -q "$OPT/src" "$staging" >/dev/null 2>&1; then
    rm -rf "$staging"
else
    rm -rf "$OPT/src.old"
    [ -d "$OPT/src" ] && mv "$OPT/src" "$OPT/src.old"
    mv "$staging" "$OPT/src"
    rm -rf "$OPT/src.old"
fi

if [ "$SKIP_VENV" -eq 0 ]; then
    # Exactly what requirements.lock says, hash-checked, as deploy/bootstrap-dev.sh does: pip,
    # setuptools and wheel are in the lock too, so nothing here is unpinned. A lock that
    # changed gets a new virtualenv, so that nothing the old lock had stays behind.
    lock_hash="$(sha256sum "$OPT/src/requirements.lock" | cut -d' ' -f1)"
    if [ ! -x "$OPT/venv/bin/python" ] || [ "$(cat "$OPT/venv/.postern-lock" 2>/dev/null)" != "$lock_hash" ]; then
        say "virtualenv: $OPT/venv from requirements.lock"
        rm -rf "$OPT/venv"
        python3 -m venv "$OPT/venv"
        "$OPT/venv/bin/python" -m pip install --quiet --require-hashes --no-deps \
            -r "$OPT/src/requirements.lock"
        printf '%s\n' "$lock_hash" > "$OPT/venv/.postern-lock"
    fi
    # The project itself, with no dependency of its own and the locked setuptools as its build
    # backend (no build isolation), built from a copy so that /opt/postern/src stays as copied.
    build="$(mktemp -d)"
    cp -a "$OPT/src/." "$build/"
    "$OPT/venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation \
        --force-reinstall --no-cache-dir "$build"
    rm -rf "$build"
    "$OPT/venv/bin/python" -m pip check >/dev/null \
        || die "requirements.lock does not satisfy the packaging: $("$OPT/venv/bin/python" -m pip check)"
fi

# -- 4. configuration and units ----------------------------------------------------------------
put() {  # mode owner group source destination: replace only when the content differs
    local mode="$1" owner="$2" group="$3" from="$4" to="$5"
    if ! cmp -s "$from" "$to"; then
        say "writing ${to#"$ROOT"}"
        install -m "$mode" -o "$owner" -g "$group" "$from" "$to.new"
        mv -f "$to.new" "$to"
    else
        chmod "$mode" "$to"
        chown "$owner:$group" "$to"
    fi
}
install -d -m 0750 -o 0 -g "$POSTERN_GID" "$ETC"
put 0644 0 0 "$SOURCE/deploy/torrc" "$ETC/torrc"
# Not in /etc/postern (0750, group postern): HAProxy runs as a user of its own that must read
# its configuration, which holds ports and limits only.
install -d -m 0755 -o 0 -g 0 "$ROOT/etc/postern-front"
put 0644 0 0 "$SOURCE/deploy/haproxy.cfg" "$ROOT/etc/postern-front/haproxy.cfg"
if [ ! -e "$ETC/postern.env" ]; then
    say "writing ${ETC#"$ROOT"}/postern.env (yours to edit; never replaced)"
    cat > "$ETC/postern.env.new" <<'EOF'
# POSTERN_* settings of the Postern server (config/settings.py, docs/operations.md).
# POSTERN_DATA_DIR is set by the units. Examples:
# POSTERN_MAX_UPLOAD_BYTES=2147483648
# POSTERN_PURGE_AFTER_ACK=1
EOF
    chmod 0640 "$ETC/postern.env.new"
    chown "0:$POSTERN_GID" "$ETC/postern.env.new"
    mv "$ETC/postern.env.new" "$ETC/postern.env"
fi
mkdir -p "$UNITS"
for unit in "${UNIT_FILES[@]}"; do
    put 0644 0 0 "$SOURCE/deploy/systemd/$unit" "$UNITS/$unit"
done

# -- 5. data ---------------------------------------------------------------------------------
mkdir -p "$ROOT/var/lib"
if [ ! -d "$DATA" ]; then
    install -d -m 0700 -o "$POSTERN_UID" -g "$POSTERN_GID" "$DATA"
fi
if [ -n "$DATA_DEVICE" ]; then
    [ -z "$ROOT" ] || die "--data-device cannot be used with --root"
    [ -b "$DATA_DEVICE" ] || die "--data-device $DATA_DEVICE is not a block device"
    # shellcheck source=deploy/datafs.conf
    . "$SOURCE/deploy/datafs.conf"
    if ! blkid -p "$DATA_DEVICE" >/dev/null 2>&1; then
        [ -z "$(ls -A "$DATA")" ] || die "$DATA is not empty: move its content away before giving it a file system of its own"
        say "data file system: mkfs.ext4 $DATAFS_MKFS_OPTIONS on $DATA_DEVICE"
        # shellcheck disable=SC2086
        mkfs.ext4 -q -L postern-data $DATAFS_MKFS_OPTIONS "$DATA_DEVICE"
    fi
    features="$(dumpe2fs -h "$DATA_DEVICE" 2>/dev/null | sed -n 's/^Filesystem features:[[:space:]]*//p')"
    inode_size="$(dumpe2fs -h "$DATA_DEVICE" 2>/dev/null | sed -n 's/^Inode size:[[:space:]]*//p')"
    [ -n "$features" ] || die "$DATA_DEVICE holds no ext4 file system; it will not be formatted over"
    case " $features " in
        *" has_journal "*) die "$DATA_DEVICE has a journal, which keeps old metadata: see docs/operations.md" ;;
    esac
    [ "$inode_size" = "128" ] || die "$DATA_DEVICE has $inode_size-byte inodes, which keep creation times: see docs/operations.md"
    uuid="$(blkid -s UUID -o value "$DATA_DEVICE")"
    if ! grep -q "^UUID=$uuid " /etc/fstab; then
        say "data file system: /etc/fstab entry for /var/lib/postern"
        printf 'UUID=%s /var/lib/postern ext4 %s 0 2\n' "$uuid" "$DATAFS_MOUNT_OPTIONS" >> /etc/fstab
    fi
    if ! mountpoint -q "$DATA"; then
        mount "$DATA"
    fi
    # The daily blur settles every path of the data directory, lost+found included.
    [ ! -d "$DATA/lost+found" ] || chown "$POSTERN_UID:$POSTERN_GID" "$DATA/lost+found"
fi
chmod 0700 "$DATA"
chown "$POSTERN_UID:$POSTERN_GID" "$DATA"
if [ -n "$ROOT_PUB" ]; then
    if [ -f "$DATA/instance.json" ]; then
        say "data directory /var/lib/postern is already initialized: --root-pub ignored"
    elif [ -n "$ROOT" ] || [ "$SKIP_VENV" -eq 1 ]; then
        say "not initializing the data directory (--root or --skip-venv): run dropbox init"
    else
        say "initializing /var/lib/postern pinned to $ROOT_PUB"
        install -m 0644 "$ROOT_PUB" "$ETC/root.pub"
        runuser -u postern -- "$OPT/venv/bin/dropbox" init --data-dir /var/lib/postern \
            --root "$ETC/root.pub"
    fi
fi

# -- 6. systemd --------------------------------------------------------------------------------
if [ -z "$ROOT" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --quiet postern.target "${SERVICES[@]}"
    if [ -f "$DATA/instance.json" ]; then
        say "restarting postern.target"
        systemctl restart postern.target "${SERVICES[@]}"
    fi
fi

say "done."
if [ ! -f "$DATA/instance.json" ]; then
    cat <<EOF
Next:
  1. sudo deploy/install.sh --root-pub /path/to/root.pub      (the team root key from the station)
  2. sudo -u postern /opt/postern/venv/bin/dropbox keyring install --data-dir /var/lib/postern keyring.json
  3. sudo systemctl start postern.target
  4. journalctl -u postern-onion   (prints the source onion address and the API onion address)
EOF
fi
