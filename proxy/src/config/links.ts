// What a user pastes into Telegram: the client-side secret parameter and the proxy links
// (docs/protocol.md §1). The server only ever knows the 16-byte key; the `dd`/`ee` prefixes and the
// fake-TLS domain are instructions to the client.
import { ProtocolError } from '../protocol/errors.js';

const SECRET_KEY_LENGTH = 16;
/** tdlib never puts more domain characters than this into the SNI (§1.2). */
const MAX_DOMAIN_LENGTH = 182;

/**
 * The three secret forms a client understands (§1.2): plain obfuscated2 (transport chosen by the
 * app), `dd` (padded intermediate forced) and `ee` (fake TLS towards `domain`).
 */
export type ClientSecret =
  | { readonly kind: 'plain'; readonly key: Buffer }
  | { readonly kind: 'dd'; readonly key: Buffer }
  | { readonly kind: 'ee'; readonly key: Buffer; readonly domain: string };

export type SecretEncoding = 'hex' | 'base64url';

const PREFIX = { dd: 0xdd, ee: 0xee } as const;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
// Letters, digits, hyphens and dots: what a DNS name in an SNI can hold.
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

function checkKey(key: Buffer): void {
  if (key.length !== SECRET_KEY_LENGTH) {
    throw new ProtocolError('ERR_SECRET_LENGTH', `secret key must be 16 bytes, got ${key.length}`);
  }
}

function checkDomain(domain: string): void {
  if (domain.length === 0 || domain.length > MAX_DOMAIN_LENGTH || !DOMAIN.test(domain)) {
    throw new ProtocolError('ERR_SECRET_DOMAIN', `not a usable fake-TLS domain: ${JSON.stringify(domain)}`);
  }
}

/** The bytes a client decodes from the secret parameter. */
export function clientSecretBytes(secret: ClientSecret): Buffer {
  checkKey(secret.key);
  switch (secret.kind) {
    case 'plain':
      return Buffer.from(secret.key);
    case 'dd':
      return Buffer.concat([Buffer.from([PREFIX.dd]), secret.key]);
    case 'ee':
      checkDomain(secret.domain);
      return Buffer.concat([Buffer.from([PREFIX.ee]), secret.key, Buffer.from(secret.domain, 'ascii')]);
  }
}

/**
 * The `secret=` value of a link: hex by default (what most proxies print), or unpadded base64url
 * (what mtg prints for `ee` secrets). Never standard base64 (§1.3, §10 item 8). Base64url is only
 * offered for `ee`: other forms could spell a valid hex string (e.g. 16 zero bytes give 22 'A's),
 * which every client reads as hex.
 */
export function formatSecretParam(secret: ClientSecret, encoding: SecretEncoding = 'hex'): string {
  if (encoding === 'base64url' && secret.kind !== 'ee') {
    throw new ProtocolError('ERR_SECRET_ENCODING', `a ${secret.kind} secret must be written in hex`);
  }
  return clientSecretBytes(secret).toString(encoding);
}

/**
 * Reads a `secret=` value the way tdlib does: hex first, then unpadded base64url; then classifies
 * the bytes (16 = plain, 17 starting `dd`, 18+ starting `ee` followed by the domain).
 */
export function parseSecretParam(param: string): ClientSecret & { readonly bytes: Buffer } {
  const bytes = decodeSecretParam(param);
  if (bytes.length === SECRET_KEY_LENGTH) return { kind: 'plain', key: bytes, bytes };
  const key = bytes.subarray(1, 1 + SECRET_KEY_LENGTH);
  if (bytes.length === SECRET_KEY_LENGTH + 1 && bytes[0] === PREFIX.dd) return { kind: 'dd', key, bytes };
  if (bytes.length > SECRET_KEY_LENGTH + 1 && bytes[0] === PREFIX.ee) {
    const domain = bytes.subarray(1 + SECRET_KEY_LENGTH).toString('latin1');
    checkDomain(domain);
    return { kind: 'ee', key, domain, bytes };
  }
  throw new ProtocolError(
    'ERR_SECRET_FORMAT',
    `a secret must be 16 bytes, dd + 16 bytes or ee + 16 bytes + domain; got ${bytes.length} bytes`,
  );
}

function decodeSecretParam(param: string): Buffer {
  if (HEX.test(param)) return Buffer.from(param, 'hex');
  if (BASE64URL.test(param)) {
    const bytes = Buffer.from(param, 'base64url');
    // Node ignores trailing bits and a dangling character; accept only the canonical spelling.
    if (bytes.toString('base64url') === param) return bytes;
  }
  throw new ProtocolError('ERR_SECRET_ENCODING', 'secret is neither hex nor unpadded base64url');
}

export interface ProxyLinks {
  /** `tg://proxy?...`, opened directly by the apps. */
  readonly tg: string;
  /** `https://t.me/proxy?...`, the same through a web page. */
  readonly tme: string;
}

/**
 * Both link forms for a server (DNS name, IPv4 or IPv6 literal), port and secret parameter. Like
 * the reference, ':' stays unescaped and an IPv6 server is not bracketed.
 */
export function proxyLinks(server: string, port: number, secretParam: string): ProxyLinks {
  const query =
    `server=${encodeURIComponent(server).replaceAll('%3A', ':')}` +
    `&port=${port}&secret=${encodeURIComponent(secretParam)}`;
  return { tg: `tg://proxy?${query}`, tme: `https://t.me/proxy?${query}` };
}
