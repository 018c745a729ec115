// A link's `secret=` value read the way a Telegram app (tdlib) reads it (docs/protocol.md §1.2,
// §1.3). The proxy only writes links; tests read them back to check what an app would see.
import { type ClientSecret, checkDomain } from '../../proxy/src/config/links.js';
import { ProtocolError } from '../../proxy/src/protocol/errors.js';

const KEY_LENGTH = 16;
const DD = 0xdd;
const EE = 0xee;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Hex first, then unpadded base64url; then the bytes are classified (16 = plain, 17 starting
 * `dd`, 18+ starting `ee` followed by the domain).
 */
export function parseSecretParam(param: string): ClientSecret & { readonly bytes: Buffer } {
  const bytes = decodeSecretParam(param);
  if (bytes.length === KEY_LENGTH) return { kind: 'plain', key: bytes, bytes };
  const key = bytes.subarray(1, 1 + KEY_LENGTH);
  if (bytes.length === KEY_LENGTH + 1 && bytes[0] === DD) return { kind: 'dd', key, bytes };
  if (bytes.length > KEY_LENGTH + 1 && bytes[0] === EE) {
    const domain = bytes.subarray(1 + KEY_LENGTH).toString('latin1');
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
