#!/bin/sh
# mmdebstrap customize hook: gives the `memcache` user and group the official image's
# uid/gid 11211 (Debian's package picks the next free system id), and hands it what the
# package gave the old ids. $1 is the image's root directory.
set -eu
root=$1
id=11211
old_uid=$(awk -F: '$1 == "memcache" { print $3 }' "$root/etc/passwd")
old_gid=$(awk -F: '$1 == "memcache" { print $3 }' "$root/etc/group")
for file in passwd group shadow gshadow; do
  [ -f "$root/etc/$file" ] && sed -i '/^memcache:/d' "$root/etc/$file"
done
echo "memcache:x:$id:$id:Memcached:/nonexistent:/usr/sbin/nologin" >>"$root/etc/passwd"
echo "memcache:x:$id:" >>"$root/etc/group"
if [ -f "$root/etc/shadow" ]; then echo "memcache:*:0:0:99999:7:::" >>"$root/etc/shadow"; fi
if [ -f "$root/etc/gshadow" ]; then echo "memcache:*::" >>"$root/etc/gshadow"; fi
if [ -n "$old_uid" ]; then find "$root" -xdev -uid "$old_uid" -exec chown -h "$id" {} +; fi
if [ -n "$old_gid" ]; then find "$root" -xdev -gid "$old_gid" -exec chgrp -h "$id" {} +; fi
