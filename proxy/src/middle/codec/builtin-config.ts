// Middle-ends to use when Telegram's list cannot be fetched (§6.2; the tables mtprotoproxy and
// telemt build in). Where the current list and secret are published is in config/telegram-urls.ts.
import type { HostPort, MiddleProxyConfig } from './proxy-config.js';

const v4 = (host: string): readonly HostPort[] => [{ host, port: 8888 }];
const v6 = (host: string, port = 8888): readonly HostPort[] => [{ host, port }];

export const BUILTIN_MIDDLE_PROXIES_V4: ReadonlyMap<number, readonly HostPort[]> = new Map([
  [1, v4('149.154.175.50')],
  [-1, v4('149.154.175.50')],
  [2, v4('149.154.161.144')],
  [-2, v4('149.154.161.144')],
  [3, v4('149.154.175.100')],
  [-3, v4('149.154.175.100')],
  [4, v4('91.108.4.136')],
  [-4, v4('149.154.165.109')],
  [5, v4('91.108.56.183')],
  [-5, v4('91.108.56.183')],
]);

export const BUILTIN_MIDDLE_PROXIES_V6: ReadonlyMap<number, readonly HostPort[]> = new Map([
  [1, v6('2001:b28:f23d:f001::d')],
  [-1, v6('2001:b28:f23d:f001::d')],
  [2, v6('2001:67c:04e8:f002::d', 80)],
  [-2, v6('2001:67c:04e8:f002::d', 80)],
  [3, v6('2001:b28:f23d:f003::d')],
  [-3, v6('2001:b28:f23d:f003::d')],
  [4, v6('2001:67c:04e8:f004::d')],
  [-4, v6('2001:67c:04e8:f004::d')],
  [5, v6('2001:b28:f23f:f005::d')],
  [-5, v6('2001:b28:f23f:f005::d')],
]);

/** The built-in table as a parsed config: DC 2 as default, the official connection defaults. */
export function builtinProxyConfig(family: 4 | 6): MiddleProxyConfig {
  return {
    defaultDc: 2,
    targets: family === 4 ? BUILTIN_MIDDLE_PROXIES_V4 : BUILTIN_MIDDLE_PROXIES_V6,
    timeoutMs: 300,
    minConnections: 4,
    maxConnections: 8,
  };
}
