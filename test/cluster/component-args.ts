// Pure functions: the command lines of the control-plane components and the
// fake node, from one description of where everything is. Every listener is on
// 127.0.0.1; the only other addresses are virtual ones that nothing dials.
import { join } from 'node:path';
import type { ClusterPki } from './certs.js';

/** Where one control plane's files and ports are. */
export interface Layout {
  readonly tempDir: string;
  readonly binDir: string;
  readonly etcdClientPort: number;
  readonly etcdPeerPort: number;
  readonly apiPort: number;
  readonly pki: ClusterPki;
  readonly kubeconfigs: {
    readonly admin: string;
    readonly controllerManager: string;
    readonly scheduler: string;
  };
}

// The virtual range Service ClusterIPs are drawn from. Nothing listens on or
// dials these addresses: there is no kube-proxy, so it never carries traffic.
const serviceCidr = '10.0.0.0/24';
/** The ClusterIP of Service default/kubernetes, named in the serving cert. */
export const serviceApiIp = '10.0.0.1';
export const fakeNodeName = 'kwok-node-0';

export const etcdClientUrl = (l: Layout): string => `http://127.0.0.1:${l.etcdClientPort}`;
export const apiServerUrl = (l: Layout): string => `https://127.0.0.1:${l.apiPort}`;

export function etcdArgs(l: Layout): string[] {
  const peerUrl = `http://127.0.0.1:${l.etcdPeerPort}`;
  return [
    '--name=mtkube-test',
    `--data-dir=${join(l.tempDir, 'etcd')}`,
    `--listen-client-urls=${etcdClientUrl(l)}`,
    `--advertise-client-urls=${etcdClientUrl(l)}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=mtkube-test=${peerUrl}`,
    // Test data is thrown away: skipping fsync makes every write much faster.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

export function apiserverArgs(l: Layout): string[] {
  return [
    `--etcd-servers=${etcdClientUrl(l)}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // The default reconciler publishes the advertise address as the endpoint
    // of Service default/kubernetes and refuses loopback ones. No pod here
    // dials that Service, so skip it rather than use a non-loopback address.
    '--endpoint-reconciler-type=none',
    `--secure-port=${l.apiPort}`,
    `--tls-cert-file=${l.pki.apiserver.cert}`,
    `--tls-private-key-file=${l.pki.apiserver.key}`,
    `--client-ca-file=${l.pki.ca.cert}`,
    // How the API server authenticates to a real node's kubelet (logs, exec,
    // port-forward); the kubelet checks it against the same CA.
    `--kubelet-client-certificate=${l.pki.admin.cert}`,
    `--kubelet-client-key=${l.pki.admin.key}`,
    '--authorization-mode=Node,RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${l.pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${l.pki.serviceAccountKey}`,
    `--service-cluster-ip-range=${serviceCidr}`,
    '--allow-privileged=true',
    '--profiling=false',
    // The API server otherwise writes its own self-signed cert here.
    `--cert-dir=${join(l.tempDir, 'apiserver-certs')}`,
  ];
}

export function controllerManagerArgs(l: Layout): string[] {
  return [
    `--kubeconfig=${l.kubeconfigs.controllerManager}`,
    '--bind-address=127.0.0.1',
    // No HTTPS endpoint: nothing scrapes it, and it would need another port.
    '--secure-port=0',
    '--leader-elect=false',
    '--controllers=*',
    // Each controller acts as its own ServiceAccount, as in a real cluster,
    // so RBAC mistakes in our manifests would show up here too.
    '--use-service-account-credentials=true',
    // That means ~40 ServiceAccounts and tokens at start; the default client
    // rate limit (20 qps) alone made start-up take 6 s longer.
    '--kube-api-qps=200',
    '--kube-api-burst=400',
    `--service-account-private-key-file=${l.pki.serviceAccountKey}`,
    `--root-ca-file=${l.pki.ca.cert}`,
    `--cluster-signing-cert-file=${l.pki.ca.cert}`,
    `--cluster-signing-key-file=${l.pki.ca.key}`,
  ];
}

export function schedulerArgs(l: Layout): string[] {
  return [
    `--kubeconfig=${l.kubeconfigs.scheduler}`,
    '--bind-address=127.0.0.1',
    '--secure-port=0',
    '--leader-elect=false',
  ];
}

export function kwokArgs(l: Layout): string[] {
  return [
    `--kubeconfig=${l.kubeconfigs.admin}`,
    // Lifecycle stages taken from the kwok module by build.sh.
    `--config=${join(l.binDir, 'kwok-stages.yaml')}`,
    '--manage-all-nodes=false',
    '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
    '--node-lease-duration-seconds=40',
    // Fake pod and node IPs only appear in status; keeping them in the
    // loopback range means a stray connection to one stays on this host.
    '--cidr=127.240.0.0/16',
    '--node-ip=127.0.0.1',
  ];
}

/**
 * The node kwok pretends to run. No taint: pods of a plain Deployment (our
 * operator's proxies) should land on it without tolerations.
 */
export function fakeNode(): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: fakeNodeName,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: { type: 'kwok', 'kubernetes.io/hostname': fakeNodeName, 'kubernetes.io/os': 'linux' },
    },
  };
}
