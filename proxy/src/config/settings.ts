// Every setting the proxy reads: its environment variable, its command-line flag and its help text.
// One table, so `--help`, the README and the parser cannot drift apart.

export interface Setting {
  /** Environment variable; also the key in the raw settings map. */
  readonly env: string;
  /** Other environment variables accepted for the same setting (the official image's names). */
  readonly aliases?: readonly string[];
  /** Long command-line flag without the dashes. */
  readonly flag: string;
  readonly kind: 'string' | 'boolean';
  /** An empty value means something ("none") instead of "not set". */
  readonly emptyIsValue?: true;
  readonly help: string;
  readonly placeholder?: string;
}

export const SETTINGS: readonly Setting[] = [
  {
    env: 'SECRET',
    flag: 'secret',
    kind: 'string',
    placeholder: 'HEX[,HEX...]',
    help: 'Client secrets, 32 hex digits each, comma separated, at most 16. Default: generated once and kept in DATA_DIR.',
  },
  {
    env: 'SECRET_COUNT',
    flag: 'secret-count',
    kind: 'string',
    placeholder: 'N',
    help: 'How many secrets to generate when SECRET is not set and none are saved (1..16, default 1).',
  },
  {
    env: 'TAG',
    flag: 'tag',
    kind: 'string',
    placeholder: 'HEX',
    help: 'Advertising tag from @MTProxybot, 32 hex digits.',
  },
  {
    env: 'MODE',
    flag: 'mode',
    kind: 'string',
    placeholder: 'auto|direct|middle',
    help: "Upstream: direct to Telegram's DCs, or through Telegram's middle proxies (needed for TAG). auto (default): middle when TAG is set.",
  },
  {
    env: 'PROXY_SECRET_URL',
    flag: 'proxy-secret-url',
    kind: 'string',
    placeholder: 'URL|FILE',
    help: "Middle mode: where Telegram's proxy secret comes from, an http(s) URL or a file (default https://core.telegram.org/getProxySecret).",
  },
  {
    env: 'PROXY_CONFIG_URL',
    flag: 'proxy-config-url',
    kind: 'string',
    placeholder: 'URL|FILE',
    help: "Middle mode: where Telegram's middle-proxy list comes from, an http(s) URL or a file (default https://core.telegram.org/getProxyConfig).",
  },
  {
    env: 'PROXY_CONFIG_V6_URL',
    flag: 'proxy-config-v6-url',
    kind: 'string',
    placeholder: 'URL|FILE',
    help: "Middle mode with MIDDLE_IPV6: where Telegram's IPv6 middle-proxy list comes from (default https://core.telegram.org/getProxyConfigV6).",
  },
  {
    env: 'MIDDLE_IPV6',
    flag: 'middle-ipv6',
    kind: 'string',
    placeholder: 'off|on|only',
    help: 'Middle mode: off (default) dials IPv4 middle proxies only; on adds the IPv6 list to the pool (clients go to whichever are ready); only uses the IPv6 list alone, for IPv6-only hosts.',
  },
  {
    env: 'CLOCK_CHECK',
    flag: 'clock-check',
    kind: 'string',
    placeholder: 'on|off',
    help: "Middle mode: compare our clock with the Date header of each HTTP config fetch (Telegram's middle proxies refuse a clock more than 30 s off) and report it in /stats, /metrics and the log (default on). off: not measured, reported as off.",
  },
  {
    env: 'CONFIG_REFRESH_INTERVAL',
    flag: 'config-refresh-interval',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'Middle mode: fetch the proxy secret and config again this often; new connections use the new list (default 3600; 0: never).',
  },
  {
    env: 'WORKERS',
    flag: 'workers',
    kind: 'string',
    placeholder: 'N',
    help: 'Worker processes serving clients (1..256, default 2).',
  },
  {
    env: 'MAX_CONNECTIONS',
    flag: 'max-connections',
    kind: 'string',
    placeholder: 'N',
    help: 'Client connections per worker; above it new connections are refused (default 60000).',
  },
  {
    env: 'PORT',
    aliases: ['HTTP_PORT'],
    flag: 'port',
    kind: 'string',
    placeholder: 'PORT',
    help: 'Port clients connect to (default 443; HTTP_PORT is accepted as in the official image).',
  },
  {
    env: 'BIND',
    flag: 'bind',
    kind: 'string',
    placeholder: 'ADDR',
    help: 'Address to listen on (default: every IPv4 and IPv6 address).',
  },
  {
    env: 'EXTERNAL_IP',
    flag: 'external-ip',
    kind: 'string',
    placeholder: 'IP',
    help: 'Public IP address of this proxy (default: detected, see IP_DETECT_URLS).',
  },
  {
    env: 'INTERNAL_IP',
    flag: 'internal-ip',
    kind: 'string',
    placeholder: 'IP',
    help: 'Local IP address of this proxy (default: the first non-loopback interface address).',
  },
  {
    env: 'PUBLIC_HOST',
    flag: 'public-host',
    kind: 'string',
    placeholder: 'HOST',
    help: 'Host name or IP put into the printed links (default: the external IP).',
  },
  {
    env: 'PUBLIC_PORT',
    flag: 'public-port',
    kind: 'string',
    placeholder: 'PORT',
    help: 'Port put into the printed links, when clients reach the proxy on another port (default: PORT).',
  },
  {
    env: 'IP_DETECT_URLS',
    flag: 'ip-detect-urls',
    kind: 'string',
    emptyIsValue: true,
    placeholder: 'URL[,URL...]',
    help: 'Services that answer with our public IP as plain text, tried in order with a 3 s limit each. Empty: no detection.',
  },
  {
    env: 'DC_ADDRS',
    flag: 'dc-addrs',
    kind: 'string',
    placeholder: 'ID=HOST:PORT,...',
    help: "Override Telegram's data centre addresses, e.g. 1=127.0.0.1:7001,-2=[::1]:7002.",
  },
  {
    env: 'PREFER_IPV6',
    flag: 'prefer-ipv6',
    kind: 'string',
    placeholder: 'on|off',
    help: "Try Telegram's IPv6 addresses before IPv4 ones (default off).",
  },
  {
    env: 'FAKE_TLS_DOMAIN',
    flag: 'fake-tls-domain',
    kind: 'string',
    placeholder: 'DOMAIN[,DOMAIN...]',
    help: 'Turns on fake TLS (ee links): the site the proxy pretends to be. The first domain goes into the links; an SNI must name one of them (see UNKNOWN_SNI).',
  },
  {
    env: 'MODES',
    flag: 'modes',
    kind: 'string',
    placeholder: 'classic,secure,tls',
    help: 'Client modes accepted: classic (abridged/intermediate), secure (dd, padded), tls (ee, fake TLS). Default: classic,secure without FAKE_TLS_DOMAIN, tls with it.',
  },
  {
    env: 'UNKNOWN_SNI',
    flag: 'unknown-sni',
    kind: 'string',
    placeholder: 'mask|drop|accept',
    help: 'A valid fake-TLS hello whose SNI names none of FAKE_TLS_DOMAIN: mask it like any failed check, drop it (hold, then close), or accept it (default mask).',
  },
  {
    env: 'TLS_CLOCK_SKEW',
    flag: 'tls-clock-skew',
    kind: 'string',
    placeholder: 'SECONDS',
    help: "How far a fake-TLS client's clock may be from ours, either way (default 600).",
  },
  {
    env: 'MASK',
    flag: 'mask',
    kind: 'string',
    placeholder: 'on|off',
    help: 'Relay connections that fail the handshake to MASK_HOST, so that probes see a real web site (default on; needs FAKE_TLS_DOMAIN or MASK_HOST).',
  },
  {
    env: 'MASK_HOST',
    flag: 'mask-host',
    kind: 'string',
    placeholder: 'HOST',
    help: 'Where failed connections are relayed (default: the first FAKE_TLS_DOMAIN). Never this proxy itself.',
  },
  {
    env: 'MASK_PORT',
    flag: 'mask-port',
    kind: 'string',
    placeholder: 'PORT',
    help: 'Port of MASK_HOST (default 443).',
  },
  {
    env: 'MASK_MAX_BYTES',
    flag: 'mask-max-bytes',
    kind: 'string',
    placeholder: 'BYTES',
    help: 'A masked relay is closed after this many bytes, both directions together (default 16777216).',
  },
  {
    env: 'MASK_TIMEOUT',
    flag: 'mask-timeout',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'A masked relay is closed after this long (default 60).',
  },
  {
    env: 'REPLAY_WINDOW',
    flag: 'replay-window',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'How long handshakes are remembered to refuse replays; at least twice TLS_CLOCK_SKEW (default 172800, two days).',
  },
  {
    env: 'REPLAY_CACHE_SIZE',
    flag: 'replay-cache-size',
    kind: 'string',
    placeholder: 'N',
    help: 'Handshakes remembered at most, for all workers together; the oldest are forgotten first (default 262144).',
  },
  {
    env: 'PROXY_PROTOCOL',
    flag: 'proxy-protocol',
    kind: 'string',
    placeholder: 'off|v1|v2|auto',
    help: 'Expect a PROXY protocol header from a load balancer before the client bytes (default off). auto accepts either version or none.',
  },
  {
    env: 'MAX_CONNECTIONS_PER_IP',
    flag: 'max-connections-per-ip',
    kind: 'string',
    placeholder: 'N',
    help: 'Open connections one client address may hold, per worker process (default 0: no limit).',
  },
  {
    env: 'DATA_DIR',
    flag: 'data-dir',
    kind: 'string',
    placeholder: 'DIR',
    help: 'Where generated secrets are kept (default /data in the container, else ~/.local/state/mtkube).',
  },
  {
    env: 'HANDSHAKE_TIMEOUT',
    flag: 'handshake-timeout',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'A client must complete its handshake within this time (default 10).',
  },
  {
    env: 'IDLE_TIMEOUT',
    flag: 'idle-timeout',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'Close a connection with no traffic in either direction for this long (default 300).',
  },
  {
    env: 'CONNECT_TIMEOUT',
    flag: 'connect-timeout',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'Give up connecting to Telegram after this long (default 10).',
  },
  {
    env: 'DRAIN_TIMEOUT',
    flag: 'drain-timeout',
    kind: 'string',
    placeholder: 'SECONDS',
    help: 'On SIGTERM, stop accepting and give open connections this long to finish (default 25).',
  },
  {
    env: 'STATS_PORT',
    flag: 'stats-port',
    kind: 'string',
    placeholder: 'PORT',
    help: 'Port of the official-format /stats page (default 2398; 0 turns it off).',
  },
  {
    env: 'STATS_BIND',
    flag: 'stats-bind',
    kind: 'string',
    placeholder: 'ADDR',
    help: 'Address the /stats page listens on (default: every address; STATS_ALLOW decides who gets an answer).',
  },
  {
    env: 'STATS_ALLOW',
    flag: 'stats-allow',
    kind: 'string',
    placeholder: 'CIDR[,CIDR...]',
    help: 'Client addresses allowed to read /stats (default 127.0.0.0/8,::1/128); others get 404.',
  },
  {
    env: 'METRICS_PORT',
    flag: 'metrics-port',
    kind: 'string',
    placeholder: 'PORT',
    help: 'Port of /metrics (Prometheus), /healthz and /readyz (default 9102; 0 turns it off).',
  },
  {
    env: 'METRICS_BIND',
    flag: 'metrics-bind',
    kind: 'string',
    placeholder: 'ADDR',
    help: 'Address /metrics listens on (default: every address, so an in-cluster Prometheus can scrape it).',
  },
  {
    env: 'USERS_FILE',
    flag: 'users-file',
    kind: 'string',
    placeholder: 'FILE',
    help: 'YAML or JSON file of named users with their own secrets and limits; reloaded when it changes and on SIGHUP.',
  },
  {
    env: 'USER_METRICS',
    flag: 'user-metrics',
    kind: 'string',
    placeholder: 'on|off',
    help: 'Per-user series in /metrics and the users section of /stats, labelled by user name (default on).',
  },
  {
    env: 'BANNER',
    flag: 'banner',
    kind: 'string',
    placeholder: 'on|off',
    help: 'Print the secrets and their links at start (default on).',
  },
  {
    env: 'LOG_LEVEL',
    flag: 'log-level',
    kind: 'string',
    placeholder: 'LEVEL',
    help: 'error, warn, info or debug (default info).',
  },
  { env: 'HELP', flag: 'help', kind: 'boolean', help: 'Print this help and exit.' },
];

export type RawSettings = ReadonlyMap<string, string>;

export function helpText(): string {
  const lines = [
    'Usage: mtproxy [options]',
    '',
    'An MTProto proxy for Telegram. Every option can also be given as the environment variable shown;',
    'a command-line flag wins over the environment.',
    '',
  ];
  for (const s of SETTINGS) {
    const flag = `--${s.flag}${s.placeholder ? ` ${s.placeholder}` : ''}`;
    const env = [s.env, ...(s.aliases ?? [])].join(', ');
    lines.push(`  ${flag}`, `      ${env === 'HELP' ? '' : `[${env}] `}${s.help}`);
  }
  return `${lines.join('\n')}\n`;
}
