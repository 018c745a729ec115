// Pure functions: the configuration files of the test cluster's real node
// (containerd, CNI, kubelet) from one description of where everything is.
//
// The node runs inside a network namespace the harness creates. Pod addresses
// (podCidr) and the node's own address (nodeIp) exist only in that namespace
// and the pods' namespaces under it, and nothing there routes anywhere else:
// the namespace has no interface but its loopback, the pods' bridge and the
// node address. The host and the node talk through relays over Unix sockets
// (relay.ts), never through a shared network.

export interface NodeLayout {
  readonly dir: string;
  readonly binDir: string;
  /** Debian's runc. */
  readonly runc: string;
  /** Debian's CNI plugins (containernetworking-plugins). */
  readonly cniBinDir: string;
  /** Kubernetes node name; the API server dials it to reach the kubelet. */
  readonly nodeName: string;
  readonly nodeIp: string;
  readonly podCidr: string;
  readonly kubeletPort: number;
  readonly kubeconfig: string;
  readonly clientCaFile: string;
  readonly sandboxImage: string;
  /** Name of the CNI network; also names its cache entries in /var/lib/cni. */
  readonly networkName: string;
  readonly bridgeName: string;
  /** The kubelet's cgroupRoot: a cgroup of this node's own (host-state.ts). */
  readonly cgroupRoot: string;
}

export const containerdSocket = (l: NodeLayout): string => `${l.dir}/containerd/containerd.sock`;

export function containerdConfig(l: NodeLayout): string {
  const q = (s: string): string => JSON.stringify(s);
  return `version = 3
root = ${q(`${l.dir}/containerd/root`)}
state = ${q(`${l.dir}/containerd/state`)}
# Plugins that would write outside the node's directory, or that it does not use.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.nri.v1.nri",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${q(containerdSocket(l))}

[ttrpc]
  address = ${q(`${l.dir}/containerd/containerd.sock.ttrpc`)}

[debug]
  level = "warn"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${q(l.sandboxImage)}

[plugins.'io.containerd.cri.v1.runtime']
  # This machine refuses a negative oom_score_adj; containerd then keeps each
  # container's score at or above its own.
  restrict_oom_score_adj = true
  # Pod network namespaces as files under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${q(l.runc)}
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(l.cniBinDir)}]
    conf_dir = ${q(`${l.dir}/cni/net.d`)}
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

/** A bridge in the node's namespace; pods get addresses from podCidr. */
export function cniConfig(l: NodeLayout): object {
  return {
    cniVersion: '1.0.0',
    name: l.networkName,
    plugins: [
      {
        type: 'bridge',
        bridge: l.bridgeName,
        isGateway: true,
        isDefaultGateway: true,
        // No masquerade: nothing in the namespace routes off the machine.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: l.podCidr }]],
          dataDir: `${l.dir}/cni/ipam`,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function kubeletConfig(l: NodeLayout): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // The machine has hybrid cgroups v1 and no systemd managing them.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: l.cgroupRoot,
    containerRuntimeEndpoint: `unix://${containerdSocket(l)}`,
    address: '127.0.0.1',
    port: l.kubeletPort,
    readOnlyPort: 0,
    healthzPort: 0,
    // The API server's client certificate (kube-apiserver --kubelet-client-*)
    // is checked against the test CA; nobody else reaches this port.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: l.clientCaFile },
    },
    authorization: { mode: 'AlwaysAllow' },
    podLogsDir: `${l.dir}/pod-logs`,
    registerNode: true,
    // No cluster DNS here; pods get the node's resolver configuration.
    resolvConf: '',
    serializeImagePulls: false,
    // Images are imported, never pulled: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    failSwapOn: false,
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    maxPods: 30,
    // Quick feedback in tests: restart back-off starts at 1 s anyway; a
    // stopped container is noticed within a second.
    runtimeRequestTimeout: '2m',
    shutdownGracePeriod: '0s',
  };
}

export function kubeletArgs(l: NodeLayout): string[] {
  return [
    `--config=${l.dir}/kubelet-config.json`,
    `--kubeconfig=${l.kubeconfig}`,
    `--root-dir=${l.dir}/kubelet`,
    `--cert-dir=${l.dir}/kubelet-pki`,
    `--hostname-override=${l.nodeName}`,
    `--node-ip=${l.nodeIp}`,
    '--v=1',
  ];
}
