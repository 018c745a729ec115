// Reading Telegram's two middle-proxy files (§6.1): the proxy secret (getProxySecret, binary,
// 32..256 bytes) and the proxy config (getProxyConfig / getProxyConfigV6, text, §6.2). A source
// starting with http:// or https:// is fetched with a deadline and a size cap; anything else is a
// local file path. A body that is empty or does not validate is refused as a whole, with an error
// naming the source and the problem.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { DateObservation } from './clock.js';
import { type MiddleProxyConfig, ProxyConfigError, parseProxyConfig } from './codec/proxy-config.js';

/** Official MIN_PWD_LEN / MAX_PWD_LEN (net/net-crypto-aes.h). */
const PROXY_SECRET_MIN = 32;
const PROXY_SECRET_MAX = 256;

export interface ReadLimits {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = { timeoutMs: 10_000, maxBytes: 1 << 20 };

/**
 * `failed`: the source could not be read (network, HTTP status, missing file, too large).
 * `rejected`: it was read, and the content is not a valid secret or config.
 */
export type TelegramFileProblem = 'failed' | 'rejected';

export class TelegramFileError extends Error {
  readonly code = 'ERR_TELEGRAM_FILE';
  readonly source: string;
  readonly problem: TelegramFileProblem;

  constructor(source: string, problem: TelegramFileProblem, message: string) {
    super(`${source}: ${message}`);
    this.name = 'TelegramFileError';
    this.source = source;
    this.problem = problem;
  }
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** The bytes behind a URL or a file path; throws TelegramFileError(`failed`). */
export async function readSource(source: string, limits: ReadLimits = DEFAULT_READ_LIMITS): Promise<Buffer> {
  return (await readSourceDated(source, limits)).bytes;
}

/**
 * `readSource`, with what an HTTP answer told about the clocks (its Date header and when we asked
 * and heard back, for the clock check); `date` is undefined for a local file.
 */
export async function readSourceDated(
  source: string,
  limits: ReadLimits = DEFAULT_READ_LIMITS,
): Promise<{ bytes: Buffer; date: DateObservation | undefined }> {
  try {
    if (!isUrl(source)) return { bytes: await readLocalFile(source, limits.maxBytes), date: undefined };
    return await fetchUrl(source, limits);
  } catch (err) {
    if (err instanceof TelegramFileError) throw err;
    const e = err as Error & { cause?: Error };
    const detail = e.name === 'TimeoutError' ? `no answer within ${limits.timeoutMs} ms` : e.message;
    const cause = e.cause?.message ? ` (${e.cause.message})` : '';
    throw new TelegramFileError(source, 'failed', `${detail}${cause}`);
  }
}

async function fetchUrl(url: string, limits: ReadLimits): Promise<{ bytes: Buffer; date: DateObservation }> {
  const sentAtMs = Date.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(limits.timeoutMs), redirect: 'follow' });
  const date: DateObservation = {
    source: url,
    dateHeader: res.headers.get('date') ?? undefined,
    sentAtMs,
    receivedAtMs: Date.now(),
  };
  if (!res.ok) {
    await res.body?.cancel();
    throw new TelegramFileError(url, 'failed', `HTTP ${res.status} ${res.statusText}`.trim());
  }
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > limits.maxBytes) {
    await res.body?.cancel();
    throw tooLarge(url, limits.maxBytes);
  }
  const parts: Buffer[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > limits.maxBytes) throw tooLarge(url, limits.maxBytes);
      parts.push(Buffer.from(chunk));
    }
  }
  return { bytes: Buffer.concat(parts, size), date };
}

async function readLocalFile(path: string, maxBytes: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    // One byte more than allowed tells a file that is too large from one that fits exactly.
    const buffer = Buffer.alloc(maxBytes + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, size, buffer.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > maxBytes) throw tooLarge(path, maxBytes);
    }
    return buffer.subarray(0, size);
  } finally {
    await file.close();
  }
}

function tooLarge(source: string, maxBytes: number): TelegramFileError {
  return new TelegramFileError(source, 'failed', `larger than ${maxBytes} bytes`);
}

/** The proxy secret, checked for the official size range; throws TelegramFileError(`rejected`). */
export function validateProxySecret(bytes: Buffer, source: string): Buffer {
  if (bytes.length === 0) throw new TelegramFileError(source, 'rejected', 'the proxy secret is empty');
  if (bytes.length < PROXY_SECRET_MIN || bytes.length > PROXY_SECRET_MAX) {
    throw new TelegramFileError(
      source,
      'rejected',
      `the proxy secret has ${bytes.length} bytes, expected ${PROXY_SECRET_MIN}..${PROXY_SECRET_MAX}`,
    );
  }
  return bytes;
}

/** The whole config text parsed; any error rejects it (TelegramFileError(`rejected`)). */
export function validateProxyConfig(bytes: Buffer, source: string): MiddleProxyConfig {
  if (bytes.length === 0) throw new TelegramFileError(source, 'rejected', 'the proxy config is empty');
  try {
    return parseProxyConfig(bytes.toString('latin1'));
  } catch (err) {
    if (err instanceof ProxyConfigError) {
      throw new TelegramFileError(source, 'rejected', `the proxy config was rejected: ${err.message}`);
    }
    throw err;
  }
}

export function md5Hex(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}
