// Telegram's middle-proxy list as the primary sends it to its workers: the config as JSON-safe
// data (maps as entry lists), and the message that carries a new proxy secret and list. Workers
// switch new clients to it; clients already bound keep their connection.
import { field, messageKind } from '../process/ipc.js';
import type { WorkerIpc } from '../process/worker.js';
import type { HostPort, MiddleProxyConfig } from './codec/proxy-config.js';
import type { MiddleProxyPool } from './pool.js';

/** A config as JSON-safe data, for the primary to send to its workers over IPC. */
export interface WireProxyConfig {
  readonly defaultDc: number;
  readonly targets: readonly (readonly [number, readonly HostPort[]])[];
  readonly timeoutMs: number;
  readonly minConnections: number;
  readonly maxConnections: number;
}

export function configToWire(c: MiddleProxyConfig): WireProxyConfig {
  return {
    defaultDc: c.defaultDc,
    targets: [...c.targets.entries()],
    timeoutMs: c.timeoutMs,
    minConnections: c.minConnections,
    maxConnections: c.maxConnections,
  };
}

export function configFromWire(w: WireProxyConfig): MiddleProxyConfig {
  return { ...w, targets: new Map(w.targets) };
}

/** Middle mode: what every worker's pool needs; the primary fetches it once and pushes changes. */
export interface MiddleSettings {
  readonly secretHex: string;
  readonly config: WireProxyConfig;
  readonly externalIp: string | undefined;
  readonly tagHex: string | undefined;
}

/** A new proxy secret and middle-proxy list. */
export const MIDDLE_CONFIG = messageKind('middle-config', {
  secretHex: field.string,
  config: field.object<WireProxyConfig>(),
});

/** A worker's pool follows the primary's 'middle-config' messages. */
export function followMiddleConfig(ipc: WorkerIpc, pool: MiddleProxyPool): void {
  ipc.on(MIDDLE_CONFIG, (msg) => {
    pool.applySecret(Buffer.from(msg.secretHex, 'hex'));
    pool.applyConfig(configFromWire(msg.config));
  });
}
