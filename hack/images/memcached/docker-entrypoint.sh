#!/bin/sh
# The official memcached image's entrypoint: arguments that start with a dash are flags
# of memcached (`-p 11211 -m 64`, which is what the operator passes as the container's
# args); anything else is a command to run instead.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- memcached "$@"
fi
exec "$@"
