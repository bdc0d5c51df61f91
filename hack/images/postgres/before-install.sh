#!/bin/sh
# mmdebstrap essential hook, run before the PostgreSQL packages install: the postgres
# user and group get uid/gid 999, as in the official image (the packages keep an
# existing user), and the packages create no cluster (the entrypoint runs initdb on the
# volume instead). $1 is the image's root directory.
set -eu
root=$1
echo "postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash" >>"$root/etc/passwd"
echo "postgres:x:999:" >>"$root/etc/group"
if [ -f "$root/etc/shadow" ]; then echo "postgres:*:0:0:99999:7:::" >>"$root/etc/shadow"; fi
if [ -f "$root/etc/gshadow" ]; then echo "postgres:*::" >>"$root/etc/gshadow"; fi
mkdir -p "$root/etc/postgresql-common/createcluster.d"
echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.d/no-main-cluster.conf"
