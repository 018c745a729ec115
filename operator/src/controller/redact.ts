// Last line of defence for "never a secret in status, events or logs": any text the operator
// writes out that might echo an API answer passes through redact(). Our own messages never hold
// secret values to begin with.

// 32+ hex digits: a client secret or an ad tag (also inside dd/ee forms and links).
const HEX_RUN = /[0-9a-fA-F]{32,}/g;
// A long base64 run: Secret data as the API server might echo it.
const BASE64_RUN = /[A-Za-z0-9+/_-]{40,}={0,2}/g;
// A link's secret parameter in any encoding.
const SECRET_PARAM = /secret=[^&\s"']+/g;

export function redact(text: string): string {
  return text
    .replace(SECRET_PARAM, 'secret=[redacted]')
    .replace(HEX_RUN, '[redacted]')
    .replace(BASE64_RUN, '[redacted]');
}

export function errorMessage(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}

/** Depth below which nested log fields are no longer walked (and are dropped, not printed raw). */
const MAX_DEPTH = 8;

/**
 * A copy of any JSON-like value with every string in it redacted, however deep: an API answer
 * logged as a field (error bodies, objects) can carry Secret data anywhere. Errors become their
 * redacted message; cycles and values nested too deep become a marker instead of being printed.
 */
export function redactDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redact(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redact(value.message);
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1, seen));
  if (Buffer.isBuffer(value)) return '[bytes]';
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1, seen);
  return out;
}
