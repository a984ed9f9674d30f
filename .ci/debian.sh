#!/bin/sh
# Install a Debian package if its binary is not there yet, and print the
# binary's path: `.ci/debian.sh BINARY PACKAGE [FALLBACK-PACKAGE...]`.
# The system tests use it for what they run next to flowkit (nginx as a
# reverse proxy, prometheus scraping /metrics, chromium loading /dashboard).
# Runs as root in CI; uses sudo otherwise if available. The package's own
# service is never started (policy-rc.d 101), so nothing listens after it.
set -eu
BINARY=${1:?usage: .ci/debian.sh BINARY PACKAGE [FALLBACK-PACKAGE...]}
shift
[ $# -gt 0 ] || { echo "usage: .ci/debian.sh BINARY PACKAGE [FALLBACK-PACKAGE...]" >&2; exit 2; }
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
    echo "$BINARY is not installed and apt-get is not available: install Debian's $1" >&2
    exit 1
fi
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
status=1
UPDATED=""
for package in "$@"; do
    if $SUDO apt-get install -y -q --no-install-recommends "$package" >&2; then
        status=0
        break
    fi
    if [ -z "$UPDATED" ]; then
        UPDATED=1
        $SUDO apt-get update -q >&2 || true
        if $SUDO apt-get install -y -q --no-install-recommends "$package" >&2; then
            status=0
            break
        fi
    fi
done
if [ -n "$CREATED_POLICY" ]; then
    $SUDO rm -f "$POLICY"
fi
if [ "$status" != 0 ]; then
    echo "apt-get could not install any of: $*" >&2
    exit 1
fi
find_binary || { echo "$* installed but $BINARY not found on PATH, /usr/sbin or /usr/bin" >&2; exit 1; }
