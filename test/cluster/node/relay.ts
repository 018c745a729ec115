// TCP relays between the host's loopback and the real node's network
// namespace, over a Unix socket in the node's directory (a file both sides
// see, whatever their network). Two socat processes per relay: one listens on
// TCP on one side, the other dials TCP on the other side. So the host and the
// node share no network at all: the kubelet reaches the API server on the
// host's 127.0.0.1, the API server reaches the kubelet (logs, exec,
// port-forward), pods reach a stand-in on the host, and a test reaches a
// hostNetwork pod, each only through a relay the harness started.
import { join } from 'node:path';
import { type Component, startComponent } from '../processes.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface RelaySpec {
  readonly name: string;
  /** Where connections are accepted, and in which network namespace ('' = the host's). */
  readonly listen: Endpoint & { readonly netns: string };
  /** Where they are carried to, and in which namespace. */
  readonly target: Endpoint & { readonly netns: string };
}

const inNetns = (netns: string, command: readonly string[]): [string, string[]] =>
  netns === '' ? [command[0] ?? '', command.slice(1)] : ['ip', ['netns', 'exec', netns, ...command]];

/** Starts both halves; the caller stops the returned components. */
export function startRelay(dir: string, spec: RelaySpec): Component[] {
  const socket = join(dir, `${spec.name}.sock`);
  const [dialBin, dialArgs] = inNetns(spec.target.netns, [
    'socat',
    `UNIX-LISTEN:${socket},fork,unlink-early`,
    `TCP:${spec.target.host}:${spec.target.port}`,
  ]);
  const [listenBin, listenArgs] = inNetns(spec.listen.netns, [
    'socat',
    `TCP-LISTEN:${spec.listen.port},bind=${spec.listen.host},reuseaddr,fork`,
    `UNIX-CONNECT:${socket}`,
  ]);
  return [
    startComponent(`relay-${spec.name}-dial`, dialBin, dialArgs, join(dir, `${spec.name}-dial.log`)),
    startComponent(`relay-${spec.name}-listen`, listenBin, listenArgs, join(dir, `${spec.name}-listen.log`)),
  ];
}
