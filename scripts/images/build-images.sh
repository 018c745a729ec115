#!/usr/bin/env bash
# `npm run images`: builds the proxy and operator images from Dockerfile.proxy
# and Dockerfile.operator, tagged as the chart and the operator expect by
# default (ghcr.io/mtkube/mtproxy:<version>, ghcr.io/mtkube/mtproxy-operator:<version>,
# <version> from package.json), and saves each as an OCI archive that the test
# cluster's real node imports into its containerd when it starts.
#
# Builder: buildah when present (layers cached, so an unchanged tree rebuilds
# in seconds), else docker.
#
# Settings (environment):
#   BUILD_CA_FILE  PEM bundle that `npm ci` inside the build trusts, for networks
#                  whose TLS goes through an inspecting proxy. Mounted for the
#                  build's RUN steps only, never written into an image. Default:
#                  the host's /etc/ssl/certs/ca-certificates.crt when it exists;
#                  set it empty to use only Node's own roots. (buildah only:
#                  docker build cannot mount a file into RUN steps of an
#                  unchanged Dockerfile.)
#   IMAGE_ARCHIVE_DIR  where the archives go (default ~/.cache/mtkube/images).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
version="$(node -p 'require("./package.json").version')"
archive_dir="${IMAGE_ARCHIVE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mtkube/images}"
ca_file="${BUILD_CA_FILE-/etc/ssl/certs/ca-certificates.crt}"
images=("proxy ghcr.io/mtkube/mtproxy:$version" "operator ghcr.io/mtkube/mtproxy-operator:$version")
start=$SECONDS

if command -v buildah >/dev/null 2>&1; then
  bash "$root/scripts/images/build-base-image.sh"
  work="$(mktemp -d /tmp/mtkube-images.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  mounts=()
  if [[ -n "$ca_file" && -f "$ca_file" ]]; then
    # npm reads its global config from <prefix>/etc/npmrc (/usr/local in the
    # node image). The directory is mounted over the image's own (empty)
    # /usr/local/etc while a RUN step runs, so no file or mount point of it
    # is left in any layer.
    mkdir "$work/etc"
    cp "$ca_file" "$work/etc/mtkube-build-ca.pem"
    printf 'cafile=/usr/local/etc/mtkube-build-ca.pem\nupdate-notifier=false\n' >"$work/etc/npmrc"
    mounts=(-v "$work/etc:/usr/local/etc:ro")
    echo "npm inside the build trusts $ca_file (BUILD_CA_FILE)" >&2
  fi
  mkdir -p "$archive_dir"
  for entry in "${images[@]}"; do
    read -r name tag <<<"$entry"
    echo "building $tag from Dockerfile.$name" >&2
    buildah bud --quiet --format docker --layers --pull=never --runtime runc --network host --isolation chroot \
      "${mounts[@]}" -f "Dockerfile.$name" -t "$tag" . >/dev/null
    rm -f "$archive_dir/$name.tar.tmp"
    buildah push --quiet "$tag" "oci-archive:$archive_dir/$name.tar.tmp:$tag" >/dev/null
    mv -f "$archive_dir/$name.tar.tmp" "$archive_dir/$name.tar"
  done
  echo "built $(printf '%s ' "${images[@]#* }")in $((SECONDS - start))s; archives in $archive_dir" >&2
elif command -v docker >/dev/null 2>&1; then
  for entry in "${images[@]}"; do
    read -r name tag <<<"$entry"
    docker build -f "Dockerfile.$name" -t "$tag" .
  done
  echo "built with docker in $((SECONDS - start))s (the test node imports buildah's archives only)" >&2
else
  echo "npm run images: neither buildah nor docker is installed (bash scripts/install-container-tools.sh installs buildah)" >&2
  exit 1
fi
