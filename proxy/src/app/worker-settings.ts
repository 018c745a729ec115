// What a worker is started with: every setting its parts need, sent once in the 'start' message.
// Features that change something later (users, Telegram's config, site profiles) send their own
// messages and update these settings for workers started after the change.
import type { Config } from '../config/config.js';
import type { HostPort } from '../direct/dc-table.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import type { MaskSettings } from '../masking/mask-relay.js';
import type { MiddleSettings } from '../middle/config-messages.js';
import type { ClientMode } from '../session/policy.js';
import type { WireUser } from '../users/user-messages.js';

/** Settings a worker takes from Config as they are (all JSON-safe). */
const FROM_CONFIG = [
  'port',
  'bind',
  'maxConnections',
  'preferIpv6',
  'handshakeTimeoutMs',
  'idleTimeoutMs',
  'connectTimeoutMs',
  'logLevel',
  'fakeTlsDomains',
  'unknownSni',
  'tlsClockSkewSeconds',
  'tlsRecordSizes',
  'tlsRecordTiming',
  'proxyProtocol',
  'maxConnectionsPerIp',
  'failedHandshakeRate',
  'maxUnidentifiedHandshakes',
  'middleClientBacklog',
  'middleBacklogBudget',
] as const satisfies readonly (keyof Config)[];

export interface WorkerSettings extends Pick<Config, (typeof FROM_CONFIG)[number]> {
  readonly users: readonly WireUser[];
  /** Undefined in direct mode. */
  readonly middle: MiddleSettings | undefined;
  readonly dcOverrides: readonly [number, readonly HostPort[]][];
  readonly modes: readonly ClientMode[];
  /** One per fake-TLS domain; the primary sends changes as 'tls-profiles' messages. */
  readonly tlsProfiles: readonly SiteProfile[];
  /** Undefined: failed connections are held and closed, not masked. */
  readonly mask: MaskSettings | undefined;
  /** Addresses and ports that reach this proxy, beyond the interfaces' own (mask loop check). */
  readonly selfAddresses: readonly string[];
  readonly selfPorts: readonly number[];
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
  const copied = Object.fromEntries(FROM_CONFIG.map((key) => [key, config[key]]));
  return {
    ...(copied as Pick<Config, (typeof FROM_CONFIG)[number]>),
    users,
    middle: extra.middle,
    dcOverrides: [...config.dcOverrides.entries()],
    modes: [...config.modes],
    tlsProfiles: extra.tlsProfiles ?? [],
    mask: extra.mask,
    selfAddresses: extra.selfAddresses,
    selfPorts: selfPorts(config),
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
