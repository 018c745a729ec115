// Which middle proxies the pool dials, from Telegram's two lists (getProxyConfig for IPv4,
// getProxyConfigV6 for IPv6) and MIDDLE_IPV6: off uses the IPv4 list, only the IPv6 list (for
// IPv6-only hosts), on both: each DC's cluster holds the addresses of both families, and the pool
// spreads clients over whichever of them are ready, so a family that cannot be reached costs only
// its failed dials.
import type { HostPort, MiddleProxyConfig } from './codec/proxy-config.js';

export type MiddleIpv6 = 'off' | 'on' | 'only';

export function middleTargets(
  v4: MiddleProxyConfig,
  v6: MiddleProxyConfig | undefined,
  use: MiddleIpv6,
): MiddleProxyConfig {
  if (use === 'off' || v6 === undefined) return v4;
  if (use === 'only') return v6;
  const targets = new Map<number, readonly HostPort[]>();
  for (const dc of new Set([...v4.targets.keys(), ...v6.targets.keys()])) {
    targets.set(dc, [...(v4.targets.get(dc) ?? []), ...(v6.targets.get(dc) ?? [])]);
  }
  // The IPv4 list's default DC and connection settings stay: the IPv6 list repeats them.
  return { ...v4, targets };
}
