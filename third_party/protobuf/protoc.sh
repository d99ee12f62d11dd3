#!/bin/sh
# Debian's protoc (package protobuf-compiler, pinned in
# //third_party:debian_packages.txt).
if [ ! -x /usr/bin/protoc ]; then
  echo "fcvm: /usr/bin/protoc not found: run tools/bootstrap.sh as root" >&2
  exit 1
fi
exec /usr/bin/protoc "$@"
