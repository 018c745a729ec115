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
