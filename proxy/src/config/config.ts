// Environment + flags -> one validated, typed Config. Nothing else in the proxy reads process.env.

import { isIP } from 'node:net';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { HostPort } from '../direct/dc-table.js';
import type { LogLevel } from '../log/logger.js';
import type { MaskSettings } from '../masking/mask-relay.js';
import { ProtocolError } from '../protocol/errors.js';
import type { ClientMode, ProxyProtocolSetting, UnknownSniAction } from '../session/policy.js';
import { ConfigError } from './errors.js';
import { clientSecretBytes } from './links.js';
import { parseChoice, parseInteger } from './parse-values.js';
import { type RawSettings, SETTINGS } from './settings.js';
import { parseStateSettings, type StateSettings } from './state-settings.js';
import { PROXY_CONFIG_URL, PROXY_CONFIG_V6_URL, PROXY_SECRET_URL } from './telegram-urls.js';

const MAX_SECRETS = 16;

export interface ProxySecret {
  /** Stable, non-secret name used in logs and metrics: secret1, secret2, ... */
  readonly name: string;
  readonly bytes: Buffer;
}

export interface Config {
  /** Secrets given by the user; undefined means "load from DATA_DIR or generate". */
  readonly secrets: readonly ProxySecret[] | undefined;
  readonly secretCount: number;
  readonly tag: Buffer | undefined;
  /** auto: middle when a tag is set. */
  readonly mode: 'auto' | 'direct' | 'middle';
  readonly proxySecretUrl: string;
  readonly proxyConfigUrl: string;
  /** getProxyConfigV6: Telegram's IPv6 middle proxies. */
  readonly proxyConfigV6Url: string;
  /** off: IPv4 middle proxies only; on: both families in the pool; only: IPv6 ones only. */
  readonly middleIpv6: 'off' | 'on' | 'only';
  /** Compare our clock with the Date header of each HTTP config fetch. */
  readonly clockCheck: boolean;
  readonly configRefreshMs: number;
  readonly workers: number;
  readonly maxConnections: number;
  readonly port: number;
  readonly bind: string | undefined;
  readonly externalIp: string | undefined;
  readonly internalIp: string | undefined;
  readonly publicHost: string | undefined;
  readonly publicPort: number;
  readonly ipDetectUrls: readonly string[];
  /** DC id -> addresses, replacing the built-in table for those ids. */
  readonly dcOverrides: ReadonlyMap<number, readonly HostPort[]>;
  readonly preferIpv6: boolean;
  readonly dataDir: string;
  /** Fake-TLS domains, lower-case; the first one goes into the links. Empty: no fake TLS. */
  readonly fakeTlsDomains: readonly string[];
  readonly modes: ReadonlySet<ClientMode>;
  readonly unknownSni: UnknownSniAction;
  readonly tlsClockSkewSeconds: number;
  readonly fakeTlsProfile: 'auto' | 'off';
  readonly fakeTlsProfileRefreshMs: number;
  readonly tlsRecordSizes: 'dynamic' | 'off';
  readonly tlsRecordTiming: 'site' | 'off';
  /** Undefined when MASK=off, or when there is neither FAKE_TLS_DOMAIN nor MASK_HOST. */
  readonly mask: MaskSettings | undefined;
  readonly replayWindowMs: number;
  readonly replayCacheSize: number;
  readonly proxyProtocol: ProxyProtocolSetting;
  /** 0: no limit. */
  readonly maxConnectionsPerIp: number;
  /** Failed handshakes per second one host may cost a worker; 0: no throttle. */
  readonly failedHandshakeRate: number;
  /** 0: no limit. */
  readonly maxUnidentifiedHandshakes: number;
  readonly middleClientBacklog: number;
  readonly middleBacklogBudget: number;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly statsPort: number;
  readonly statsBind: string | undefined;
  readonly statsAllow: readonly string[];
  readonly metricsPort: number;
  readonly metricsBind: string | undefined;
  readonly metricsAllow: readonly string[];
  readonly usersFile: string | undefined;
  /** STATE_URL and friends; undefined: nothing shared. */
  readonly state: StateSettings | undefined;
  /** IANA time zone in which quota periods start. */
  readonly quotaTimeZone: string;
  readonly userMetrics: boolean;
  readonly banner: boolean;
  readonly logLevel: LogLevel;
}

/** Loopback and the private ranges an in-cluster Prometheus scrapes from (RFC 1918, RFC 6598, ULA). */
const DEFAULT_METRICS_ALLOW =
  '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7';

const DEFAULT_IP_DETECT_URLS = ['https://api.ipify.org', 'https://ifconfig.me/ip'];

/** Merge the environment and the command line (the command line wins) into NAME -> value. */
export function readRawSettings(env: NodeJS.ProcessEnv, argv: readonly string[]): RawSettings {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const s of SETTINGS) options[s.flag] = { type: s.kind };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError(
      'command line',
      (err as Error).message,
      'Run `mtproxy --help` for the list of options',
    );
  }
  const raw = new Map<string, string>();
  for (const s of SETTINGS) {
    const fromFlag = parsed.values[s.flag];
    const fromEnv = [s.env, ...(s.aliases ?? [])].map((name) => env[name]).find((v) => v !== undefined);
    if (fromFlag !== undefined) raw.set(s.env, String(fromFlag));
    else if (fromEnv !== undefined && (fromEnv !== '' || s.emptyIsValue)) raw.set(s.env, fromEnv);
  }
  return raw;
}

const HEX32 = /^[0-9a-fA-F]{32}$/;

export function parseSecretList(variable: string, value: string): ProxySecret[] {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (entries.length === 0) {
    throw new ConfigError(
      variable,
      'no secret given',
      'Give 1 to 16 secrets of 32 hex digits, comma separated',
    );
  }
  if (entries.length > MAX_SECRETS) {
    throw new ConfigError(variable, `${entries.length} secrets given`, `At most ${MAX_SECRETS} are allowed`);
  }
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    if (!HEX32.test(entry)) {
      throw new ConfigError(
        variable,
        `entry ${i + 1} ("${redact(entry)}") is not 32 hex digits`,
        'Each secret is 16 random bytes written as 32 hex digits, e.g. from `head -c 16 /dev/urandom | xxd -ps`; do not include a dd or ee prefix',
      );
    }
    const lower = entry.toLowerCase();
    if (seen.has(lower))
      throw new ConfigError(variable, `entry ${i + 1} repeats an earlier secret`, 'Remove the duplicate');
    seen.add(lower);
    return { name: `secret${i + 1}`, bytes: Buffer.from(lower, 'hex') };
  });
}

/** Enough of a bad entry to find it, not enough to leak a nearly right secret. */
function redact(entry: string): string {
  return entry.length <= 8 ? entry : `${entry.slice(0, 4)}…${entry.slice(-2)} (${entry.length} chars)`;
}

function parseHex16(variable: string, value: string): Buffer {
  if (!HEX32.test(value)) {
    throw new ConfigError(
      variable,
      `"${redact(value)}" is not 32 hex digits`,
      'Copy the tag @MTProxybot gave you',
    );
  }
  return Buffer.from(value.toLowerCase(), 'hex');
}

function parseSeconds(variable: string, value: string, min: number, max: number): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(
      variable,
      `"${value}" is not a number of seconds`,
      `Use a value from ${min} to ${max}`,
    );
  }
  return Math.round(n * 1000);
}

function parseTimeZone(variable: string, value: string): string {
  const zone = value.trim();
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw new ConfigError(
      variable,
      `"${value}" is not a time zone`,
      'Use an IANA name such as UTC or Europe/Berlin',
    );
  }
}

function parseSwitch(variable: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(v)) return true;
  if (['off', 'false', '0', 'no'].includes(v)) return false;
  throw new ConfigError(variable, `"${value}" is not on or off`, 'Use on or off');
}

function parseIp(variable: string, value: string): string {
  const v = value.trim();
  if (isIP(v) === 0)
    throw new ConfigError(variable, `"${value}" is not an IP address`, 'Use an IPv4 or IPv6 address');
  return v;
}

/** Parses `host:port`, `[v6]:port`; the host may be a name. */
export function parseHostPort(variable: string, value: string): HostPort {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]\s]+):(\d+)$/.exec(value);
  if (!m) {
    throw new ConfigError(
      variable,
      `"${value}" is not HOST:PORT`,
      'Write IPv6 addresses in brackets, e.g. [::1]:443',
    );
  }
  return { host: m[1]!, port: parseInteger(variable, m[2]!, 1, 65535) };
}

export function parseDcOverrides(variable: string, value: string): Map<number, HostPort[]> {
  const table = new Map<number, HostPort[]>();
  for (const item of value.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq < 0) {
      throw new ConfigError(
        variable,
        `"${item}" has no "="`,
        'Write entries as ID=HOST:PORT, e.g. 2=127.0.0.1:7002',
      );
    }
    const id = parseInteger(variable, item.slice(0, eq), -32768, 32767);
    if (id === 0)
      throw new ConfigError(variable, 'DC id 0 is not a data centre', 'Use ids such as 1..5 or -1..-5');
    const list = table.get(id) ?? [];
    list.push(parseHostPort(variable, item.slice(eq + 1).trim()));
    table.set(id, list);
  }
  return table;
}

function parseMode(value: string): Config['mode'] {
  const v = value.trim().toLowerCase();
  if (v === 'auto' || v === 'direct' || v === 'middle') return v;
  throw new ConfigError('MODE', `"${value}" is not a mode`, 'Use auto, direct or middle');
}

export function parseCidrs(variable: string, value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((cidr) => {
      const [addr, bits, extra] = cidr.split('/');
      const family = isIP(addr ?? '');
      const max = family === 6 ? 128 : 32;
      const n = bits === undefined ? max : Number(bits);
      if (family === 0 || extra !== undefined || !Number.isInteger(n) || n < 0 || n > max) {
        throw new ConfigError(
          variable,
          `"${cidr}" is not an address or CIDR range`,
          'Write e.g. 10.0.0.0/8,::1/128',
        );
      }
      return `${addr}/${n}`;
    });
}

function parseLogLevel(variable: string, value: string): LogLevel {
  const v = value.trim().toLowerCase();
  if (v === 'error' || v === 'warn' || v === 'info' || v === 'debug') return v;
  throw new ConfigError(variable, `"${value}" is not a log level`, 'Use error, warn, info or debug');
}

function parseDomains(variable: string, value: string): string[] {
  const domains = value
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter((d) => d !== '');
  if (domains.length === 0) {
    throw new ConfigError(variable, 'no domain given', 'Give a domain such as www.example.com, or unset it');
  }
  for (const domain of domains) {
    try {
      clientSecretBytes({ kind: 'ee', key: Buffer.alloc(16), domain });
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      throw new ConfigError(
        variable,
        `"${domain}" is not a usable domain`,
        'Use a DNS name of letters, digits, dots and hyphens, at most 182 characters',
      );
    }
  }
  return [...new Set(domains)];
}

const MODE_NAMES: readonly ClientMode[] = ['classic', 'secure', 'tls'];

function parseModes(variable: string, value: string | undefined, tls: boolean): Set<ClientMode> {
  if (value === undefined) return new Set<ClientMode>(tls ? ['tls'] : ['classic', 'secure']);
  const modes = new Set<ClientMode>();
  for (const item of value.split(',').map((m) => m.trim().toLowerCase())) {
    if (item === '') continue;
    if (!(MODE_NAMES as readonly string[]).includes(item)) {
      throw new ConfigError(
        variable,
        `"${item}" is not a mode`,
        'Use classic, secure and/or tls, comma separated',
      );
    }
    modes.add(item as ClientMode);
  }
  if (modes.size === 0) throw new ConfigError(variable, 'no mode given', 'Use classic, secure and/or tls');
  if (modes.has('tls') && !tls) {
    throw new ConfigError(variable, 'tls needs a fake-TLS domain', 'Set FAKE_TLS_DOMAIN, or leave tls out');
  }
  return modes;
}

const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

function parseHost(variable: string, value: string): string {
  const v = value.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(v) !== 0 || (v.length <= 253 && HOST_NAME.test(v))) return v;
  throw new ConfigError(
    variable,
    `"${value}" is not a host name or IP address`,
    'Give a host without a port',
  );
}

function parseMask(
  get: (name: string) => string | undefined,
  domains: readonly string[],
): MaskSettings | undefined {
  const on = parseSwitch('MASK', get('MASK') ?? 'on');
  const port = parseInteger('MASK_PORT', get('MASK_PORT') ?? '443', 1, 65535);
  const maxBytes = parseInteger('MASK_MAX_BYTES', get('MASK_MAX_BYTES') ?? '16777216', 1024, 2 ** 40);
  const timeoutMs = parseSeconds('MASK_TIMEOUT', get('MASK_TIMEOUT') ?? '60', 0.1, 86400);
  const explicit = get('MASK_HOST');
  const host = explicit === undefined ? domains[0] : parseHost('MASK_HOST', explicit);
  if (!on || host === undefined) return undefined;
  const maxRelays = parseInteger('MASK_MAX_RELAYS', get('MASK_MAX_RELAYS') ?? '1024', 1, 1_000_000);
  return { host, port, maxBytes, timeoutMs, maxRelays };
}

function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'mtkube');
}

/** Validate everything at once; the first mistake stops the start with a ConfigError. */
export function parseConfig(raw: RawSettings, env: NodeJS.ProcessEnv = {}): Config {
  const get = (name: string): string | undefined => raw.get(name);
  const port = parseInteger('PORT', get('PORT') ?? '443', 1, 65535);
  const secretValue = get('SECRET');
  const ipDetect = get('IP_DETECT_URLS');
  const domainValue = get('FAKE_TLS_DOMAIN');
  const fakeTlsDomains = domainValue === undefined ? [] : parseDomains('FAKE_TLS_DOMAIN', domainValue);
  const tlsClockSkewSeconds = parseInteger('TLS_CLOCK_SKEW', get('TLS_CLOCK_SKEW') ?? '600', 1, 86400);
  const replayWindowSeconds = parseInteger('REPLAY_WINDOW', get('REPLAY_WINDOW') ?? '172800', 1, 30 * 86400);
  if (replayWindowSeconds < 2 * tlsClockSkewSeconds) {
    throw new ConfigError(
      'REPLAY_WINDOW',
      `${replayWindowSeconds} s is shorter than twice TLS_CLOCK_SKEW (${2 * tlsClockSkewSeconds} s)`,
      'A hello must be remembered for as long as its timestamp is accepted; raise REPLAY_WINDOW',
    );
  }
  return {
    secrets: secretValue === undefined ? undefined : parseSecretList('SECRET', secretValue),
    secretCount: parseInteger('SECRET_COUNT', get('SECRET_COUNT') ?? '1', 1, MAX_SECRETS),
    tag: get('TAG') === undefined ? undefined : parseHex16('TAG', get('TAG')!),
    mode: parseMode(get('MODE') ?? 'auto'),
    proxySecretUrl: get('PROXY_SECRET_URL') ?? PROXY_SECRET_URL,
    proxyConfigUrl: get('PROXY_CONFIG_URL') ?? PROXY_CONFIG_URL,
    proxyConfigV6Url: get('PROXY_CONFIG_V6_URL') ?? PROXY_CONFIG_V6_URL,
    middleIpv6: parseChoice('MIDDLE_IPV6', get('MIDDLE_IPV6') ?? 'off', ['off', 'on', 'only'] as const),
    clockCheck: parseSwitch('CLOCK_CHECK', get('CLOCK_CHECK') ?? 'on'),
    configRefreshMs: parseSeconds(
      'CONFIG_REFRESH_INTERVAL',
      get('CONFIG_REFRESH_INTERVAL') ?? '3600',
      0,
      7 * 86400,
    ),
    workers: parseInteger('WORKERS', get('WORKERS') ?? '2', 1, 256),
    maxConnections: parseInteger('MAX_CONNECTIONS', get('MAX_CONNECTIONS') ?? '60000', 1, 1_000_000),
    port,
    bind: get('BIND') === undefined ? undefined : parseIp('BIND', get('BIND')!),
    externalIp: get('EXTERNAL_IP') === undefined ? undefined : parseIp('EXTERNAL_IP', get('EXTERNAL_IP')!),
    internalIp: get('INTERNAL_IP') === undefined ? undefined : parseIp('INTERNAL_IP', get('INTERNAL_IP')!),
    publicHost: get('PUBLIC_HOST')?.trim() || undefined,
    publicPort: parseInteger('PUBLIC_PORT', get('PUBLIC_PORT') ?? String(port), 1, 65535),
    ipDetectUrls:
      ipDetect === undefined
        ? DEFAULT_IP_DETECT_URLS
        : ipDetect
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== ''),
    dcOverrides: parseDcOverrides('DC_ADDRS', get('DC_ADDRS') ?? ''),
    preferIpv6: parseSwitch('PREFER_IPV6', get('PREFER_IPV6') ?? 'off'),
    dataDir: get('DATA_DIR') ?? defaultDataDir(env),
    fakeTlsDomains,
    modes: parseModes('MODES', get('MODES'), fakeTlsDomains.length > 0),
    unknownSni: parseChoice('UNKNOWN_SNI', get('UNKNOWN_SNI') ?? 'mask', ['mask', 'drop', 'accept'] as const),
    tlsClockSkewSeconds,
    fakeTlsProfile: parseChoice('FAKE_TLS_PROFILE', get('FAKE_TLS_PROFILE') ?? 'auto', [
      'auto',
      'off',
    ] as const),
    fakeTlsProfileRefreshMs:
      parseInteger('FAKE_TLS_PROFILE_REFRESH', get('FAKE_TLS_PROFILE_REFRESH') ?? '21600', 60, 7 * 86400) *
      1000,
    tlsRecordTiming: parseChoice('TLS_RECORD_TIMING', get('TLS_RECORD_TIMING') ?? 'off', [
      'site',
      'off',
    ] as const),
    tlsRecordSizes: parseChoice('TLS_RECORD_SIZES', get('TLS_RECORD_SIZES') ?? 'dynamic', [
      'dynamic',
      'off',
    ] as const),
    mask: parseMask(get, fakeTlsDomains),
    replayWindowMs: replayWindowSeconds * 1000,
    replayCacheSize: parseInteger(
      'REPLAY_CACHE_SIZE',
      get('REPLAY_CACHE_SIZE') ?? '4194304',
      1024,
      16_777_216,
    ),
    proxyProtocol: parseChoice('PROXY_PROTOCOL', get('PROXY_PROTOCOL') ?? 'off', [
      'off',
      'v1',
      'v2',
      'auto',
    ] as const),
    maxConnectionsPerIp: parseInteger(
      'MAX_CONNECTIONS_PER_IP',
      get('MAX_CONNECTIONS_PER_IP') ?? '500',
      0,
      1_000_000,
    ),
    failedHandshakeRate: parseInteger(
      'FAILED_HANDSHAKE_RATE',
      get('FAILED_HANDSHAKE_RATE') ?? '10',
      0,
      1_000_000,
    ),
    maxUnidentifiedHandshakes: parseInteger(
      'MAX_UNIDENTIFIED_HANDSHAKES',
      get('MAX_UNIDENTIFIED_HANDSHAKES') ?? '2048',
      0,
      1_000_000,
    ),
    middleClientBacklog: parseInteger(
      'MIDDLE_CLIENT_BACKLOG',
      get('MIDDLE_CLIENT_BACKLOG') ?? '1048576',
      65536,
      2 ** 31,
    ),
    middleBacklogBudget: parseInteger(
      'MIDDLE_BACKLOG_BUDGET',
      get('MIDDLE_BACKLOG_BUDGET') ?? '268435456',
      1 << 20,
      2 ** 40,
    ),
    handshakeTimeoutMs: parseSeconds('HANDSHAKE_TIMEOUT', get('HANDSHAKE_TIMEOUT') ?? '10', 0.1, 600),
    idleTimeoutMs: parseSeconds('IDLE_TIMEOUT', get('IDLE_TIMEOUT') ?? '300', 1, 86400),
    connectTimeoutMs: parseSeconds('CONNECT_TIMEOUT', get('CONNECT_TIMEOUT') ?? '10', 0.1, 600),
    drainTimeoutMs: parseSeconds('DRAIN_TIMEOUT', get('DRAIN_TIMEOUT') ?? '25', 0, 3600),
    statsPort: parseInteger('STATS_PORT', get('STATS_PORT') ?? '2398', 0, 65535),
    statsBind: get('STATS_BIND') === undefined ? undefined : parseIp('STATS_BIND', get('STATS_BIND')!),
    statsAllow: parseCidrs('STATS_ALLOW', get('STATS_ALLOW') ?? '127.0.0.0/8,::1/128'),
    metricsPort: parseInteger('METRICS_PORT', get('METRICS_PORT') ?? '9102', 0, 65535),
    metricsBind:
      get('METRICS_BIND') === undefined ? undefined : parseIp('METRICS_BIND', get('METRICS_BIND')!),
    metricsAllow: parseCidrs('METRICS_ALLOW', get('METRICS_ALLOW') ?? DEFAULT_METRICS_ALLOW),
    usersFile: get('USERS_FILE')?.trim() || undefined,
    state: parseStateSettings(get, env.HOSTNAME ?? hostname()),
    quotaTimeZone: parseTimeZone('QUOTA_TIME_ZONE', get('QUOTA_TIME_ZONE') ?? 'UTC'),
    userMetrics: parseSwitch('USER_METRICS', get('USER_METRICS') ?? 'on'),
    banner: parseSwitch('BANNER', get('BANNER') ?? 'on'),
    logLevel: parseLogLevel('LOG_LEVEL', get('LOG_LEVEL') ?? 'info'),
  };
}
