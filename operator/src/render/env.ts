// The proxy container's environment: ProxySettings written in the variables `mtproxy` reads
// (proxy/src/config/settings.ts). Secrets are never values here, only references to Secret keys.
import { SETTINGS } from '../../../proxy/src/config/settings.js';
import type { ProxySettings } from '../api/defaults.js';
import { DEFAULTS } from '../api/defaults.js';

/** The proxy variables the operator writes. */
const WRITTEN = [
  'BANNER',
  'CONFIG_REFRESH_INTERVAL',
  'DATA_DIR',
  'DC_ADDRS',
  'DRAIN_TIMEOUT',
  'EXTERNAL_IP',
  'FAKE_TLS_DOMAIN',
  'FAKE_TLS_PROFILE',
  'FAKE_TLS_PROFILE_REFRESH',
  'HANDSHAKE_TIMEOUT',
  'IDLE_TIMEOUT',
  'INTERNAL_IP',
  'IP_DETECT_URLS',
  'LOG_LEVEL',
  'MASK',
  'MASK_HOST',
  'MASK_PORT',
  'MAX_CONNECTIONS',
  'METRICS_PORT',
  'MODE',
  'MODES',
  'PORT',
  'PREFER_IPV6',
  'PROXY_CONFIG_URL',
  'PROXY_PROTOCOL',
  'PROXY_SECRET_URL',
  'PUBLIC_HOST',
  'PUBLIC_PORT',
  'QUOTA_TIME_ZONE',
  'SECRET',
  'STATE_LIMITS_FALLBACK',
  'STATE_REPLAY_FALLBACK',
  'STATE_REPLICAS',
  'STATE_URL',
  'STATS_ALLOW',
  'STATS_PORT',
  'TAG',
  'UNKNOWN_SNI',
  'USERS_FILE',
  'WORKERS',
] as const;

/**
 * One contract with the proxy: every name the operator writes is checked against the proxy's own
 * settings table (proxy/src/config/settings.ts) when this module loads, so a renamed or removed
 * setting stops the operator (and every test) instead of rendering a variable nobody reads.
 */
export const PROXY_ENV = proxyEnvNames(WRITTEN);

function proxyEnvNames<const N extends readonly string[]>(names: N): { readonly [K in N[number]]: K } {
  const known = new Set(SETTINGS.map((s) => s.env));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new Error(`the proxy has no setting ${unknown.join(', ')} (proxy/src/config/settings.ts)`);
  }
  return Object.freeze(Object.fromEntries(names.map((n) => [n, n]))) as { readonly [K in N[number]]: K };
}

const E = PROXY_ENV;

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?:
    | { secretKeyRef: { name: string; key: string } }
    | { fieldRef: { fieldPath: string; apiVersion?: string } };
}

export const DATA_DIR = '/data';
/** Where the users Secret is mounted (a directory, so the kubelet can swap the file in place). */
export const USERS_DIR = '/etc/mtkube/users';
export const USERS_FILE_KEY = 'users.yaml';
export const USERS_FILE = `${USERS_DIR}/${USERS_FILE_KEY}`;

export interface EnvInputs {
  /** Secret and key holding the comma-separated client secrets; undefined when there are none. */
  readonly secretsRef: { readonly name: string; readonly key: string } | undefined;
  /** The rendered users Secret, mounted at USERS_DIR; undefined without users. */
  readonly usersSecretName: string | undefined;
  /** The LoadBalancer's IP when externalIPSource is LoadBalancer and it is known. */
  readonly loadBalancerIP: string | undefined;
  /** Secret key holding STATE_URL (spec.sharedState); undefined without a store. */
  readonly stateUrlRef?: { readonly name: string; readonly key: string } | undefined;
}

const onOff = (b: boolean): string => (b ? 'on' : 'off');

/** How EXTERNAL_IP is given, or undefined when the proxy should detect it. */
export function externalIpEnv(
  settings: ProxySettings,
  loadBalancerIP: string | undefined,
): EnvVar | undefined {
  switch (settings.publicAddress.externalIPSource) {
    case 'Explicit':
      return settings.publicAddress.externalIP
        ? { name: E.EXTERNAL_IP, value: settings.publicAddress.externalIP }
        : undefined;
    case 'NodeHostIP':
      return { name: E.EXTERNAL_IP, valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } };
    case 'LoadBalancer':
      return loadBalancerIP ? { name: E.EXTERNAL_IP, value: loadBalancerIP } : undefined;
    case 'Detect':
      return undefined;
  }
}

export function renderEnv(settings: ProxySettings, inputs: EnvInputs): EnvVar[] {
  const env: EnvVar[] = [];
  const set = (name: string, value: string | number | undefined): void => {
    if (value !== undefined) env.push({ name, value: String(value) });
  };

  if (inputs.secretsRef) {
    env.push({ name: E.SECRET, valueFrom: { secretKeyRef: { ...inputs.secretsRef } } });
  }
  // Read live by the proxy: user changes reach the pods without a restart.
  if (inputs.usersSecretName) set(E.USERS_FILE, USERS_FILE);
  if (settings.adTag?.kind === 'value') set(E.TAG, settings.adTag.value);
  if (settings.adTag?.kind === 'secret') {
    env.push({ name: E.TAG, valueFrom: { secretKeyRef: { ...settings.adTag.ref } } });
  }
  // The proxy's own `auto` looks only at TAG; when only users carry tags, say middle outright.
  const middleForUsers =
    settings.upstreamMode === 'auto' && !settings.adTag && settings.effectiveMode === 'middle';
  set(E.MODE, middleForUsers ? 'middle' : settings.upstreamMode);
  set(E.MODES, settings.modes.join(','));
  set(E.WORKERS, settings.workers);
  set(E.MAX_CONNECTIONS, settings.maxConnections);
  set(E.PORT, settings.listenPort);
  set(E.PUBLIC_HOST, settings.publicAddress.host);
  set(E.PUBLIC_PORT, settings.publicAddress.port);

  const external = externalIpEnv(settings, inputs.loadBalancerIP);
  if (external) {
    env.push(external);
    // The address is known: no asking a what-is-my-IP service from inside the cluster.
    set(E.IP_DETECT_URLS, '');
  }
  env.push({ name: E.INTERNAL_IP, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  set(E.DATA_DIR, DATA_DIR);

  set(E.HANDSHAKE_TIMEOUT, settings.timeouts.handshakeSeconds);
  set(E.IDLE_TIMEOUT, settings.timeouts.idleSeconds);
  set(E.DRAIN_TIMEOUT, settings.timeouts.drainSeconds);
  // The banner prints secrets and links; pod logs are read by more people than Secrets are.
  set(E.BANNER, 'off');
  set(E.LOG_LEVEL, settings.logLevel);

  if (settings.dcAddresses.length > 0) {
    set(E.DC_ADDRS, settings.dcAddresses.map((d) => `${d.dc}=${d.address}`).join(','));
  }
  if (settings.preferIPv6 !== undefined) set(E.PREFER_IPV6, onOff(settings.preferIPv6));
  set(E.PROXY_SECRET_URL, settings.telegramConfig.proxySecretURL);
  set(E.PROXY_CONFIG_URL, settings.telegramConfig.proxyConfigURL);
  set(E.CONFIG_REFRESH_INTERVAL, settings.telegramConfig.refreshIntervalSeconds);

  set(E.FAKE_TLS_DOMAIN, settings.fakeTLS.domain);
  set(E.UNKNOWN_SNI, settings.fakeTLS.unknownSNI);
  if (settings.fakeTLS.mask.enabled !== undefined) set(E.MASK, onOff(settings.fakeTLS.mask.enabled));
  set(E.MASK_HOST, settings.fakeTLS.mask.host);
  set(E.MASK_PORT, settings.fakeTLS.mask.port);
  if (settings.fakeTLS.domain) {
    set(E.FAKE_TLS_PROFILE, settings.fakeTLS.profile.mode);
    set(E.FAKE_TLS_PROFILE_REFRESH, settings.fakeTLS.profile.refreshIntervalSeconds);
  }
  set(E.PROXY_PROTOCOL, settings.proxyProtocol);

  set(E.STATS_PORT, DEFAULTS.statsPort);
  if (settings.statsAllowCIDRs) set(E.STATS_ALLOW, settings.statsAllowCIDRs.join(','));
  // The proxy serves /metrics, /healthz and /readyz on every address by default, so probes and
  // Prometheus reach it on the pod IP; /stats stays on STATS_PORT, open to STATS_ALLOW only.
  set(E.METRICS_PORT, settings.metrics.port);

  if (inputs.stateUrlRef) {
    env.push({ name: E.STATE_URL, valueFrom: { secretKeyRef: { ...inputs.stateUrlRef } } });
    // While the store is down each pod allows its share of a limit: 1/replicas of it.
    set(E.STATE_REPLICAS, settings.replicas);
    set(E.STATE_REPLAY_FALLBACK, settings.replayFallback);
    set(E.STATE_LIMITS_FALLBACK, settings.limitsFallback);
  }
  set(E.QUOTA_TIME_ZONE, settings.quotaTimeZone);
  return env;
}
