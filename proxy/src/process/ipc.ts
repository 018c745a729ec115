// Messages between the primary and its workers over the cluster IPC channel. JSON only: buffers
// travel as hex, maps as entry lists.
import type { Config, HostPort, MaskSettings } from '../config/config.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import type { WireProxyConfig } from '../middle/telegram-config.js';
import type { ReplayAnswer, ReplayRequest } from '../replay/shared-replay.js';
import type { ClientMode, ProxyProtocolSetting, UnknownSniAction } from '../session/policy.js';
import type { CounterSnapshot } from '../telemetry/counters.js';
import type { AdmitAnswer, AdmitRequest, ReleaseNotice, WireUser } from '../users/shared-users.js';

/** Middle mode: what every worker's pool needs; the primary fetches it once and pushes changes. */
export interface MiddleSettings {
  readonly secretHex: string;
  readonly config: WireProxyConfig;
  readonly externalIp: string | undefined;
  readonly tagHex: string | undefined;
}

export interface WorkerSettings {
  readonly users: readonly WireUser[];
  /** Undefined in direct mode. */
  readonly middle: MiddleSettings | undefined;
  readonly port: number;
  readonly bind: string | undefined;
  readonly maxConnections: number;
  readonly dcOverrides: readonly [number, readonly HostPort[]][];
  readonly preferIpv6: boolean;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly logLevel: Config['logLevel'];
  readonly modes: readonly ClientMode[];
  readonly fakeTlsDomains: readonly string[];
  readonly unknownSni: UnknownSniAction;
  readonly tlsClockSkewSeconds: number;
  /** One per fake-TLS domain; the primary sends changes as 'tls-profiles' messages. */
  readonly tlsProfiles: readonly SiteProfile[];
  readonly tlsRecordSizes: 'dynamic' | 'off';
  readonly tlsRecordTiming: 'site' | 'off';
  /** Undefined: failed connections are held and closed, not masked. */
  readonly mask: MaskSettings | undefined;
  /** Addresses and ports that reach this proxy, beyond the interfaces' own (mask loop check). */
  readonly selfAddresses: readonly string[];
  readonly selfPorts: readonly number[];
  readonly proxyProtocol: ProxyProtocolSetting;
  readonly maxConnectionsPerIp: number;
  readonly failedHandshakeRate: number;
  readonly maxUnidentifiedHandshakes: number;
  readonly middleClientBacklog: number;
  readonly middleBacklogBudget: number;
}

export type PrimaryMessage =
  | { readonly type: 'start'; readonly settings: WorkerSettings }
  | { readonly type: 'drain'; readonly timeoutMs: number }
  | { readonly type: 'users'; readonly users: readonly WireUser[]; readonly revoke: readonly string[] }
  | { readonly type: 'middle-config'; readonly secretHex: string; readonly config: WireProxyConfig }
  | { readonly type: 'tls-profiles'; readonly profiles: readonly SiteProfile[] }
  | ReplayAnswer
  | AdmitAnswer;

export type WorkerMessage =
  | { readonly type: 'listening' }
  | { readonly type: 'listen-failed'; readonly code: string; readonly message: string }
  | { readonly type: 'counters'; readonly counters: CounterSnapshot }
  | ReplayRequest
  | AdmitRequest
  | ReleaseNotice;

export function workerSettings(
  config: Config,
  users: readonly WireUser[],
  extra: {
    readonly mask: MaskSettings | undefined;
    readonly selfAddresses: readonly string[];
    readonly middle: MiddleSettings | undefined;
    readonly tlsProfiles?: readonly SiteProfile[];
  },
): WorkerSettings {
  return {
    users,
    middle: extra.middle,
    port: config.port,
    bind: config.bind,
    maxConnections: config.maxConnections,
    dcOverrides: [...config.dcOverrides.entries()],
    preferIpv6: config.preferIpv6,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    logLevel: config.logLevel,
    modes: [...config.modes],
    fakeTlsDomains: config.fakeTlsDomains,
    unknownSni: config.unknownSni,
    tlsClockSkewSeconds: config.tlsClockSkewSeconds,
    tlsProfiles: extra.tlsProfiles ?? [],
    tlsRecordSizes: config.tlsRecordSizes,
    tlsRecordTiming: config.tlsRecordTiming,
    mask: extra.mask,
    selfAddresses: extra.selfAddresses,
    selfPorts: selfPorts(config),
    proxyProtocol: config.proxyProtocol,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    failedHandshakeRate: config.failedHandshakeRate,
    maxUnidentifiedHandshakes: config.maxUnidentifiedHandshakes,
    middleClientBacklog: config.middleClientBacklog,
    middleBacklogBudget: config.middleBacklogBudget,
  };
}

/**
 * Ports that reach this proxy: the client port and, since a mask target there would hand every
 * prober our statistics or metrics, the STATS_PORT and METRICS_PORT too.
 */
export function selfPorts(config: Config): number[] {
  return [...new Set([config.port, config.publicPort, config.statsPort, config.metricsPort])].filter(
    (p) => p !== 0,
  );
}
