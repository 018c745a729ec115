#!/usr/bin/env bash
# Builds the real control-plane binaries our cluster tests run against
# (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
# helm, kwok, prometheus, promtool) from the versions pinned in go.mod, into a
# per-user cache directory outside the repository.
#
#   bash test/cluster/build.sh              build if missing, print the bin dir
#   bash test/cluster/build.sh --print-dir  only print the bin dir
#
# The directory name carries the Kubernetes version and a hash of go.mod and
# this script, so bumping any pinned tool or build flag gets a fresh directory;
# a second run with everything present returns at once. paths.ts derives the
# same path for the tests. MTKUBE_K8S_BIN overrides the directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/mtkube"
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")"
helm_version="$(awk '$1 == "helm.sh/helm/v3" { print $2; exit }' "$here/go.mod")"
prom_version="$(awk '$1 == "github.com/prometheus/prometheus" { print $2; exit }' "$here/go.mod")"
# The pinned versions (go.mod) and how they are built (this script) together
# decide what is in the directory; paths.ts computes the same hash.
mod_hash="$(cat "$here/go.mod" "$here/build.sh" | sha256sum | cut -c1-12)"
out="${MTKUBE_K8S_BIN:-$cache_root/k8s-$k8s_version-$mod_hash/bin}"

tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd helm kwok prometheus promtool)

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi

complete=1
for t in "${tools[@]}"; do
  [[ -x "$out/$t" ]] || complete=0
done
[[ -f "$out/kwok-stages.yaml" ]] || complete=0
if [[ $complete == 1 && -f "$out/.complete" ]]; then
  echo "cluster binaries up to date in $out" >&2
  echo "$out"
  exit 0
fi

# Build into a scratch directory beside the target and move into place only
# when every binary linked, so an interrupted build never looks complete.
mkdir -p "$(dirname "$out")"
stage="$(mktemp -d "$(dirname "$out")/.build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

# Kubernetes components report their version from these variables; without
# them the API server says v0.0.0-master and helm's kubeVersion checks fail.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
kver_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kver_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
ldflags="-s -w $kver_flags"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$helm_version"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
# Helm's own release build (its Makefile) sets the Kubernetes version that
# `helm template` and `helm lint` assume, from its client-go module: 0.X.Y
# means Kubernetes 1.X. Without it helm says v1.20 and a chart's kubeVersion
# check fails offline.
client_go="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/client-go)"
client_go_minor="${client_go#v0.}"
client_go_minor="${client_go_minor%%.*}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$client_go_minor"
done
# Prometheus tags its Go module v0.3XX.Y for release 3.XX.Y.
prom_release="${prom_version#v0.}"
ldflags+=" -X github.com/prometheus/common/version.Version=${prom_release:0:1}.${prom_release:1}"

cd "$here"
# go.mod and go.sum are tidy and committed: never let a build rewrite them.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
# Static binaries: no C toolchain needed at build time, no libc at run time.
export CGO_ENABLED=0

echo "building cluster tools ($k8s_version) into $out; a cold build takes a while" >&2
start=$SECONDS
# One `go build` for all commands lets the go tool share and parallelise the
# compilation of their common packages (client-go, apimachinery, grpc, ...).
# Prometheus: drop every service-discovery plugin except Kubernetes, which cuts
# the cloud SDKs out of the build.
go build -trimpath -ldflags="$ldflags" -tags 'remove_all_sd,enable_kubernetes_sd' -o "$stage/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl \
  go.etcd.io/etcd/server/v3 \
  helm.sh/helm/v3/cmd/helm \
  sigs.k8s.io/kwok/cmd/kwok \
  github.com/prometheus/prometheus/cmd/prometheus \
  github.com/prometheus/prometheus/cmd/promtool
# The etcd main package is the server/v3 module root; go names it "server".
mv "$stage/server" "$stage/etcd"

# kwok ships no default behaviour: it needs Stage objects saying how fake
# nodes and pods move through their lifecycle. Take the upstream "fast" stages
# (and the lease heartbeat) from the pinned module rather than copying them.
kwok_dir="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo "---"
  cat "$kwok_dir/kustomize/stage/$f"
done > "$stage/kwok-stages.yaml"

mkdir -p "$out"
mv -f "$stage/kwok-stages.yaml" "$out/kwok-stages.yaml"
for t in "${tools[@]}"; do
  mv -f "$stage/$t" "$out/$t"
done
touch "$out/.complete"
# Each toolset is ~600 MB: drop the ones older pins or flags left behind in
# our own cache directory (never an MTKUBE_K8S_BIN chosen by the user).
if [[ -z "${MTKUBE_K8S_BIN:-}" ]]; then
  for old in "$cache_root"/k8s-*; do
    if [[ "$old" != "$(dirname "$out")" && -d "$old" ]]; then rm -rf "$old"; fi
  done
fi
echo "built cluster tools in $((SECONDS - start))s" >&2
echo "$out"
