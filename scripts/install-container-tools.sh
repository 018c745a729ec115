#!/usr/bin/env bash
# Installs what the images and the test cluster's real node need from Debian's
# packages: buildah (image builds), mmdebstrap (the local base image), runc,
# the CNI plugins, iptables, socat (relays between the host and the node's
# network namespace), iproute2 and util-linux (nsenter). Returns at once when
# everything is present. Needs root (apt-get); other apt users on the machine
# are waited for through /tmp/apt.lock.
set -euo pipefail

# command or file -> Debian package
declare -A wanted=(
  [buildah]=buildah
  [mmdebstrap]=mmdebstrap
  [/usr/sbin/runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables
  [socat]=socat
  [ip]=iproute2
  [nsenter]=util-linux
  [ss]=iproute2
)
missing=()
for what in "${!wanted[@]}"; do
  if [[ "$what" == /* ]]; then [[ -x "$what" ]] && continue; else command -v "$what" >/dev/null 2>&1 && continue; fi
  missing+=("${wanted[$what]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "container tools present" >&2
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "install-container-tools.sh: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing ${pkgs[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
flock /tmp/apt.lock sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' apt "${pkgs[@]}" >&2
