#!/bin/sh
# Install redis-server from Debian's package if it is not there yet (the Redis
# store's tests start their own server on a free port). Prints the binary path.
exec "$(dirname "$0")/debian-binary.sh" redis-server redis-server
