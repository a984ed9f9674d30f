#!/bin/sh
# Usage: debian-binary.sh BINARY PACKAGE [FALLBACK_PACKAGE...]
# Install a Debian package if BINARY is not there yet, then print BINARY's
# path. The system tests use it for the real parts they start themselves
# (nginx in front of flowkit, redis-server behind it). The packaged service is
# never started (policy-rc.d 101 = "don't"): the tests run their own process on
# a free port. Runs as root in CI; uses sudo otherwise if available.
set -eu
BINARY=${1:?usage: debian-binary.sh BINARY PACKAGE [FALLBACK_PACKAGE...]}
shift
[ $# -gt 0 ] || { echo "usage: debian-binary.sh BINARY PACKAGE [FALLBACK_PACKAGE...]" >&2; exit 2; }
find_binary() {
    for candidate in "$(command -v "$BINARY" 2>/dev/null || true)" "/usr/sbin/$BINARY" "/usr/bin/$BINARY"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
if find_binary; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$BINARY is not installed and apt-get is not available: install it (Debian: $1)" >&2
    exit 1
fi
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
install() {
    $SUDO apt-get install -y -q --no-install-recommends "$1" >&2
}
# Each package in turn, first from the package lists as they are, then once
# more after an update (a fresh machine may have none or stale ones).
status=1
for package in "$@"; do
    if install "$package"; then status=0; break; fi
done
if [ "$status" != 0 ] && $SUDO apt-get update -q >&2; then
    for package in "$@"; do
        if install "$package"; then status=0; break; fi
    done
fi
if [ -n "$CREATED_POLICY" ]; then
    $SUDO rm -f "$POLICY"
fi
if [ "$status" != 0 ]; then
    echo "apt-get could not install any of: $* (for $BINARY)" >&2
    exit 1
fi
find_binary || { echo "$* installed but $BINARY not found on PATH, /usr/sbin or /usr/bin" >&2; exit 1; }
