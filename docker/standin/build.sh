#!/usr/bin/env bash
# Make the base image the project's Dockerfiles start FROM when no registry can be reached: the
# official image is pulled when it can be; otherwise a stand-in is built from Debian's mirror
# (debootstrap, about 2 minutes once) and tagged with the official names, so the Dockerfiles build
# unchanged with `--pull=never`. Usage: build.sh ENGINE (podman or docker).
set -euo pipefail
engine=$1
here=$(cd "$(dirname "$0")" && pwd)
names=(docker.io/library/python:3.11-slim-bookworm docker.io/library/python:3.11-slim)

if $engine image exists "${names[0]}" 2>/dev/null || $engine pull -q "${names[0]}" >/dev/null 2>&1; then
    exit 0
fi
echo "no registry reachable: building a stand-in for ${names[0]} from Debian's mirror"
if ! $engine image exists localhost/bookworm-minbase; then
    command -v debootstrap >/dev/null || { echo "error: debootstrap is needed to make a base image" >&2; exit 1; }
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | $engine import --change 'CMD ["/bin/bash"]' - localhost/bookworm-minbase >/dev/null
fi
$engine build --pull=never --network host -q -f "$here/python.Dockerfile" -t "${names[0]}" -t "${names[1]}" "$here" >/dev/null
