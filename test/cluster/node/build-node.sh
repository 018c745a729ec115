#!/usr/bin/env bash
# Builds the test cluster's real node: kubelet (the same k8s.io/kubernetes
# release as the control plane, pinned in kubelet/go.mod), containerd with its
# runc shim and ctr (containerd/go.mod), and the pause binary of the sandbox
# image (containerd/pause), into a per-user cache directory.
#
#   bash test/cluster/node/build-node.sh              build if missing, print the bin dir
#   bash test/cluster/node/build-node.sh --print-dir  only print the bin dir
#
# The directory name carries a hash of the pins, the pause source and this
# script (node-paths.ts computes the same), so a second run returns at once.
# MTKUBE_NODE_BIN overrides the directory. runc, the CNI plugins and buildah
# come from Debian packages (scripts/install-container-tools.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/mtkube"
hash="$(cat "$here/kubelet/go.mod" "$here/containerd/go.mod" "$here/containerd/pause/main.go" \
  "$here/build-node.sh" | sha256sum | cut -c1-12)"
out="${MTKUBE_NODE_BIN:-$cache_root/node-$hash/bin}"
tools=(kubelet containerd containerd-shim-runc-v2 ctr pause)
# Also pause.tar, the sandbox image built from the pause binary.

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi

complete=1
for t in "${tools[@]}"; do
  [[ -x "$out/$t" ]] || complete=0
done
[[ -f "$out/pause.tar" ]] || complete=0
if [[ $complete == 1 && -f "$out/.complete" ]]; then
  echo "node binaries up to date in $out" >&2
  echo "$out"
  exit 0
fi

mkdir -p "$(dirname "$out")"
stage="$(mktemp -d "$(dirname "$out")/.build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export CGO_ENABLED=0
start=$SECONDS
echo "building the test node (kubelet, containerd) into $out; a cold build takes a few minutes" >&2

# go.mod may write a lone requirement on one line (`require k8s.io/kubernetes v1.x.y`).
pinned() { grep -Eo "^(require )?[[:space:]]*$1 v[^ ]+" "$2" | head -n1 | awk '{ print $NF }'; }
k8s_version="$(pinned k8s.io/kubernetes "$here/kubelet/go.mod")"
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
kver_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kver_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
(cd "$here/kubelet" && go build -trimpath -ldflags="-s -w $kver_flags" -o "$stage/" k8s.io/kubernetes/cmd/kubelet)

cd_version="$(pinned github.com/containerd/containerd/v2 "$here/containerd/go.mod")"
[[ -n "$k8s_version" && -n "$cd_version" ]] || { echo "build-node.sh: no pinned kubelet/containerd version" >&2; exit 1; }
# No btrfs, devmapper or zfs snapshotters: they need C headers, and the node
# uses overlayfs.
(cd "$here/containerd" && go build -trimpath -tags 'no_btrfs no_devmapper no_zfs no_cri_dockershim' \
  -ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$cd_version" -o "$stage/" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr \
  ./pause)

# The sandbox image: the pause binary alone, as an OCI archive the node
# imports (the usual one lives in a registry this machine cannot reach).
ctr="$(buildah from scratch)"
buildah copy --quiet "$ctr" "$stage/pause" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --user 65535:65535 --os linux --arch amd64 "$ctr"
buildah commit --quiet --rm "$ctr" localhost/mtkube/pause:1 >/dev/null
buildah push --quiet localhost/mtkube/pause:1 "oci-archive:$stage/pause.tar:localhost/mtkube/pause:1" >/dev/null

mkdir -p "$out"
mv -f "$stage/pause.tar" "$out/pause.tar"
for t in "${tools[@]}"; do
  mv -f "$stage/$t" "$out/$t"
done
touch "$out/.complete"
if [[ -z "${MTKUBE_NODE_BIN:-}" ]]; then
  for old in "$cache_root"/node-*; do
    if [[ "$old" != "$(dirname "$out")" && -d "$old" ]]; then rm -rf "$old"; fi
  done
fi
echo "built the test node in $((SECONDS - start))s" >&2
echo "$out"
