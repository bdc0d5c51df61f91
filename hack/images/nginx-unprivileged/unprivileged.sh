#!/bin/sh
# mmdebstrap customize hook ($1: the root): what nginxinc/nginx-unprivileged changes in
# the official image so that nginx runs as uid 101: no `user` directive, the pid file
# and the temporary files in /tmp, and the cache directory owned by that user.
set -eu
root=$1
sed -i -e 's|^user .*||' -e 's|^pid .*|pid /tmp/nginx.pid;|' "$root/etc/nginx/nginx.conf"
sed -i 's|^http {|http {\n\tclient_body_temp_path /tmp/client_temp;\n\tproxy_temp_path /tmp/proxy_temp;\n\tfastcgi_temp_path /tmp/fastcgi_temp;\n\tuwsgi_temp_path /tmp/uwsgi_temp;\n\tscgi_temp_path /tmp/scgi_temp;|' "$root/etc/nginx/nginx.conf"
chown -R 101:101 "$root/var/lib/nginx"
