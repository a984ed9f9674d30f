#!/bin/sh
# Install nginx from Debian's package if it is not there yet (the reliability
# tests put it in front of flowkit as a reverse proxy). Prints the binary path.
exec "$(dirname "$0")/debian-binary.sh" nginx nginx-light nginx
