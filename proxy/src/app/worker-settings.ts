// What a worker is started with: every setting its parts need, sent once in the 'start' message.
// Features that change something later (users, Telegram's config, site profiles) send their own
// messages and update these settings for workers started after the change.
import type { ClientMode, Config, ProxyProtocolSetting, UnknownSniAction } from '../config/config.js';
import type { HostPort } from '../direct/dc-table.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import type { MaskSettings } from '../masking/mask-relay.js';
import type { MiddleSettings } from '../middle/config-messages.js';
import type { WireUser } from '../users/user-messages.js';

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
