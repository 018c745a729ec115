// Bytes used per user, kept in DATA_DIR/usage.json so that a restart does not reset quotas.
// Written atomically (temporary file, then rename); an unreadable file starts from zero, loudly.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keepPrivate } from '../config/private-file.js';

const USAGE_FILE = 'usage.json';

export interface SavedUsage {
  usage: Map<string, number>;
  /** The quota period each user's usage belongs to; missing in files from before periods. */
  periods: Map<string, string>;
  problem?: string;
}

export async function loadUsage(dataDir: string): Promise<SavedUsage> {
  const path = join(dataDir, USAGE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
    await keepPrivate(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { usage: new Map(), periods: new Map() };
    return {
      usage: new Map(),
      periods: new Map(),
      problem: `cannot read ${path}: ${(err as Error).message}`,
    };
  }
  try {
    const doc = JSON.parse(text) as {
      bytesUsed?: Record<string, unknown>;
      periods?: Record<string, unknown>;
    };
    const entries = Object.entries(doc.bytesUsed ?? {}).filter(
      (e): e is [string, number] => typeof e[1] === 'number' && Number.isSafeInteger(e[1]) && e[1] >= 0,
    );
    const periods = Object.entries(doc.periods ?? {}).filter(
      (e): e is [string, string] => typeof e[1] === 'string',
    );
    return { usage: new Map(entries), periods: new Map(periods) };
  } catch (err) {
    return {
      usage: new Map(),
      periods: new Map(),
      problem: `${path} is not valid JSON: ${(err as Error).message}`,
    };
  }
}

export async function saveUsage(
  dataDir: string,
  usage: ReadonlyMap<string, number>,
  periods: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, USAGE_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  const doc = {
    savedAt: new Date().toISOString(),
    bytesUsed: Object.fromEntries(usage),
    periods: Object.fromEntries(periods),
  };
  await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
