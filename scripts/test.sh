#!/usr/bin/env bash
# The one test command, for developers and CI:  bash scripts/test.sh [pytest args]
#
# 1. As root on Debian: installs the real servers the tests run (Dovecot, Postfix,
#    gnome-keyring on D-Bus) and the X/Qt libraries for the GUI tests, if missing.
# 2. Creates or reuses the virtual environment .venv with pop3gui[test] installed.
# 3. Runs mypy (configured in pyproject.toml) for Linux, Windows and macOS, then
#    pytest with the given arguments.
# Exit code: pytest's ("no tests collected" counts as a failure); a mypy error
# fails the run too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The servers' programs live in sbin, which a non-login PATH may lack.
for dir in /usr/local/sbin /usr/sbin /sbin; do
    case ":$PATH:" in *":$dir:"*) ;; *) PATH="$PATH:$dir" ;; esac
done
export PATH

PACKAGES=(
    dovecot-pop3d dovecot-imapd postfix openssl fetchmail
    gnome-keyring dbus dbus-bin
    xvfb trayer
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
    libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0
    libegl1 libgl1 libfontconfig1 libdbus-1-3
)

missing_packages() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null \
        | awk '$2 == "installed" { print $1 }' || true)
    local pkg
    for pkg in "$@"; do
        grep -qxF "$pkg" <<<"$installed" || echo "$pkg"
    done
}

install_system_packages() {
    local -a wanted=("${PACKAGES[@]}")
    # A Debian python3 needs python3-venv for "python3 -m venv".
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        wanted+=(python3-venv)
    fi
    local -a missing
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: not installed: ${missing[*]} (needs root and apt-get); tests that need them are skipped (or fail under CI)" >&2
        return 0
    fi
    echo "test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    # Keep the packages' own services from starting: the tests run private ones.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        echo "test.sh: apt-get install failed ($rc)" >&2
        return "$rc"
    fi
}

setup_venv() {
    local venv=.venv stamp=.venv/.pop3gui-installed want
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
        echo "$want" >"$stamp"
    fi
}

install_system_packages
setup_venv

PY=.venv/bin/python

# The package is checked as it type-checks on each platform it ships for: the
# POSIX-only and Windows-only branches are each seen by one of the runs.
mypy_rc=0
for platform in linux win32 darwin; do
    "$PY" -m mypy --platform "$platform" || mypy_rc=$?
done

pytest_rc=0
"$PY" -m pytest "$@" || pytest_rc=$?

if [ "$pytest_rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: failing" >&2
    exit 5
fi
if [ "$pytest_rc" -ne 0 ]; then
    exit "$pytest_rc"
fi
if [ "$mypy_rc" -ne 0 ]; then
    echo "test.sh: mypy failed ($mypy_rc)" >&2
    exit 1
fi
exit 0
