#!/usr/bin/env bash
# Runs before `npm test` (npm's pretest): brings everything the tests use, each
# step cached so a second run takes seconds:
#   - Debian's container tools (scripts/install-container-tools.sh, root only);
#   - the control plane, helm, kwok and Prometheus (test/cluster/build.sh);
#   - the real node: kubelet, containerd, the pause image (test/cluster/node/build-node.sh);
#   - both images, from the Dockerfiles (npm run images).
# A step that cannot run here (no root, no buildah) is said loudly; the suites
# that need it then report themselves NOT RUN in the test summary (and fail
# under CI=true). A step that fails for another reason fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

loud() { printf '\n!!!! %s\n\n' "$*" >&2; }
step() {
  local name="$1"; shift
  local t=$SECONDS
  "$@"
  echo "== $name: $((SECONDS - t))s" >&2
}

step "control plane binaries" bash test/cluster/build.sh >/dev/null
if [[ "$(id -u)" != 0 ]]; then
  loud "not root: no real node and no images; the real-node tests will be reported NOT RUN"
  exit 0
fi
step "container tools" bash scripts/install-container-tools.sh
step "real node binaries" bash test/cluster/node/build-node.sh >/dev/null
step "images" bash scripts/images/build-images.sh
