// Client addresses as the proxy compares and counts them: one spelling per address.

/** IPv4-mapped IPv6 (::ffff:1.2.3.4) as plain IPv4; other addresses lower-cased. */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped ? mapped[1]! : lower;
}
