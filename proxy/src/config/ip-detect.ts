// Finding our own addresses: the local one from the interfaces, the public one from a web service.
// Detection must never hang or crash a start without internet: every try has a hard time limit.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export function detectInternalIp(): string | undefined {
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const external = all.filter((a) => !a.internal);
  return (external.find((a) => a.family === 'IPv4') ?? external[0])?.address;
}

export async function detectExternalIp(
  urls: readonly string[],
  timeoutMs = 3000,
): Promise<string | undefined> {
  for (const url of urls) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
      if (!res.ok) continue;
      const body = (await res.text()).trim();
      if (body.length <= 45 && isIP(body) !== 0) return body;
    } catch {
      // Unreachable, slow or refused: try the next service.
    }
  }
  return undefined;
}

const PRIVATE_V4 = [
  /^10\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^127\./,
  /^169\.254\./,
  /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
];

/** RFC 1918, loopback, link-local and carrier-grade NAT addresses, and their IPv6 counterparts. */
export function isPrivateAddress(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIP(v4) === 4) return PRIVATE_V4.some((r) => r.test(v4));
  const lower = ip.toLowerCase();
  return lower === '::1' || lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80');
}
