#!/bin/sh
# Install nginx from Debian's package if it is not there yet (the reliability
# tests put it in front of flowkit as a reverse proxy). Prints the binary path.
# Runs as root in CI; uses sudo otherwise if available.
set -eu
find_nginx() {
    for candidate in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
if find_nginx; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get >/dev/null 2>&1; then
    echo "nginx is not installed and apt-get is not available: install nginx (Debian: nginx-light)" >&2
    exit 1
fi
# Install without starting the packaged service (policy-rc.d 101 = "don't").
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
status=0
{ $SUDO apt-get install -y -q --no-install-recommends nginx-light >&2 ||
    { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q --no-install-recommends nginx-light >&2; } ||
    $SUDO apt-get install -y -q --no-install-recommends nginx >&2; } || status=$?
if [ -n "$CREATED_POLICY" ]; then
    $SUDO rm -f "$POLICY"
fi
if [ "$status" != 0 ]; then
    echo "apt-get could not install nginx-light or nginx (exit $status)" >&2
    exit 1
fi
find_nginx || { echo "nginx installed but not found on PATH or /usr/sbin" >&2; exit 1; }
