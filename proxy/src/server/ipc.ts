// Messages between the primary and its workers over the cluster IPC channel. JSON only: buffers
// travel as hex, maps as entry lists.
import type { Config, HostPort } from '../config/config.js';
import type { CounterSnapshot } from '../telemetry/counters.js';
import type { ReplayAnswer, ReplayRequest } from './shared-replay.js';

export interface WorkerSettings {
  readonly secretsHex: readonly string[];
  readonly port: number;
  readonly bind: string | undefined;
  readonly maxConnections: number;
  readonly dcOverrides: readonly [number, readonly HostPort[]][];
  readonly preferIpv6: boolean;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly logLevel: Config['logLevel'];
}

export type PrimaryMessage =
  | { readonly type: 'start'; readonly settings: WorkerSettings }
  | { readonly type: 'drain'; readonly timeoutMs: number }
  | ReplayAnswer;

export type WorkerMessage =
  | { readonly type: 'listening' }
  | { readonly type: 'listen-failed'; readonly code: string; readonly message: string }
  | { readonly type: 'counters'; readonly counters: CounterSnapshot }
  | ReplayRequest;

export function workerSettings(config: Config, secrets: readonly Buffer[]): WorkerSettings {
  return {
    secretsHex: secrets.map((s) => s.toString('hex')),
    port: config.port,
    bind: config.bind,
    maxConnections: config.maxConnections,
    dcOverrides: [...config.dcOverrides.entries()],
    preferIpv6: config.preferIpv6,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    logLevel: config.logLevel,
  };
}
