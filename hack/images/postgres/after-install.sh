#!/bin/sh
# mmdebstrap customize hook, run after the PostgreSQL packages installed: what the
# official image's Dockerfile does after its install. $1 is the image's root directory,
# $2 the PostgreSQL major version.
set -eu
root=$1
major=$2
# New clusters listen on every address (the Service reaches the pod's address).
sed -ri "s/^#?(listen_addresses)\s*=\s*\S+.*/\1 = '*'/" "$root/usr/share/postgresql/$major/postgresql.conf.sample"
grep -q "^listen_addresses = '\*'" "$root/usr/share/postgresql/$major/postgresql.conf.sample"
# The official image's locale (LANG=en_US.utf8): databases it created restore here alike.
chroot "$root" localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8
# The socket directory and the data directory's parent, writable by postgres (and, with
# the sticky bit, by any uid a user runs the image as).
mkdir -p "$root/run/postgresql" "$root/var/lib/postgresql/data" "$root/docker-entrypoint-initdb.d"
chown 999:999 "$root/run/postgresql" "$root/var/lib/postgresql/data"
chmod 3777 "$root/run/postgresql"
chmod 1777 "$root/var/lib/postgresql/data"
# ssl-cert made a private key at build time; no cluster uses it, so none ships.
rm -f "$root/etc/ssl/private/ssl-cert-snakeoil.key" "$root/etc/ssl/certs/ssl-cert-snakeoil.pem"
