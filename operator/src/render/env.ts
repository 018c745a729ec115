// The proxy container's environment: ProxySettings written in the variables `mtproxy` reads
// (proxy/src/config/settings.ts). Secrets are never values here, only references to Secret keys.
import type { ProxySettings } from '../api/defaults.js';
import { DEFAULTS } from '../api/defaults.js';

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
        ? { name: 'EXTERNAL_IP', value: settings.publicAddress.externalIP }
        : undefined;
    case 'NodeHostIP':
      return { name: 'EXTERNAL_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } };
    case 'LoadBalancer':
      return loadBalancerIP ? { name: 'EXTERNAL_IP', value: loadBalancerIP } : undefined;
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
    env.push({ name: 'SECRET', valueFrom: { secretKeyRef: { ...inputs.secretsRef } } });
  }
  // Read live by the proxy: user changes reach the pods without a restart.
  if (inputs.usersSecretName) set('USERS_FILE', USERS_FILE);
  if (settings.adTag?.kind === 'value') set('TAG', settings.adTag.value);
  if (settings.adTag?.kind === 'secret') {
    env.push({ name: 'TAG', valueFrom: { secretKeyRef: { ...settings.adTag.ref } } });
  }
  // The proxy's own `auto` looks only at TAG; when only users carry tags, say middle outright.
  const middleForUsers =
    settings.upstreamMode === 'auto' && !settings.adTag && settings.effectiveMode === 'middle';
  set('MODE', middleForUsers ? 'middle' : settings.upstreamMode);
  set('MODES', settings.modes.join(','));
  set('WORKERS', settings.workers);
  set('MAX_CONNECTIONS', settings.maxConnections);
  set('PORT', settings.listenPort);
  set('PUBLIC_HOST', settings.publicAddress.host);
  set('PUBLIC_PORT', settings.publicAddress.port);

  const external = externalIpEnv(settings, inputs.loadBalancerIP);
  if (external) {
    env.push(external);
    // The address is known: no asking a what-is-my-IP service from inside the cluster.
    set('IP_DETECT_URLS', '');
  }
  env.push({ name: 'INTERNAL_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  set('DATA_DIR', DATA_DIR);

  set('HANDSHAKE_TIMEOUT', settings.timeouts.handshakeSeconds);
  set('IDLE_TIMEOUT', settings.timeouts.idleSeconds);
  set('DRAIN_TIMEOUT', settings.timeouts.drainSeconds);
  // The banner prints secrets and links; pod logs are read by more people than Secrets are.
  set('BANNER', 'off');
  set('LOG_LEVEL', settings.logLevel);

  if (settings.dcAddresses.length > 0) {
    set('DC_ADDRS', settings.dcAddresses.map((d) => `${d.dc}=${d.address}`).join(','));
  }
  if (settings.preferIPv6 !== undefined) set('PREFER_IPV6', onOff(settings.preferIPv6));
  set('PROXY_SECRET_URL', settings.telegramConfig.proxySecretURL);
  set('PROXY_CONFIG_URL', settings.telegramConfig.proxyConfigURL);
  set('CONFIG_REFRESH_INTERVAL', settings.telegramConfig.refreshIntervalSeconds);

  set('FAKE_TLS_DOMAIN', settings.fakeTLS.domain);
  set('UNKNOWN_SNI', settings.fakeTLS.unknownSNI);
  if (settings.fakeTLS.mask.enabled !== undefined) set('MASK', onOff(settings.fakeTLS.mask.enabled));
  set('MASK_HOST', settings.fakeTLS.mask.host);
  set('MASK_PORT', settings.fakeTLS.mask.port);
  if (settings.fakeTLS.domain) {
    set('FAKE_TLS_PROFILE', settings.fakeTLS.profile.mode);
    set('FAKE_TLS_PROFILE_REFRESH', settings.fakeTLS.profile.refreshIntervalSeconds);
  }
  set('PROXY_PROTOCOL', settings.proxyProtocol);

  set('STATS_PORT', DEFAULTS.statsPort);
  if (settings.statsAllowCIDRs) set('STATS_ALLOW', settings.statsAllowCIDRs.join(','));
  // The proxy serves /metrics, /healthz and /readyz on every address by default, so probes and
  // Prometheus reach it on the pod IP; /stats stays on STATS_PORT, open to STATS_ALLOW only.
  set('METRICS_PORT', settings.metrics.port);
  return env;
}
