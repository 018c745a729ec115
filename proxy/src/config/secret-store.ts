// Secrets generated on the first start and kept in DATA_DIR, so links stay valid across restarts.
// The file is `DATA_DIR/secret`: comma-separated hex on one line, the same file the official
// Docker image keeps in its /data volume, so a user can move an existing volume over unchanged.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ProxySecret, parseSecretList } from './config.js';
import { ConfigError } from './errors.js';
import { keepPrivate } from './private-file.js';

const SECRET_FILE = 'secret';

export interface StoredSecrets {
  readonly secrets: ProxySecret[];
  /** 'generated' on the first start, 'loaded' afterwards. */
  readonly origin: 'generated' | 'loaded';
  readonly path: string;
}

export async function loadOrCreateSecrets(
  dataDir: string,
  count: number,
  random: (size: number) => Buffer = randomBytes,
  create = true,
): Promise<StoredSecrets> {
  const path = join(dataDir, SECRET_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError(
        'DATA_DIR',
        `cannot read ${path}: ${(err as Error).message}`,
        'Fix the file permissions',
      );
    }
  }
  if (text !== undefined && text.trim() !== '') {
    await keepPrivate(path);
    return { secrets: parseSecretList(`secret file ${path}`, text.trim()), origin: 'loaded', path };
  }
  if (!create) return { secrets: [], origin: 'loaded', path };
  const hex = Array.from({ length: count }, () => random(16).toString('hex'));
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // Write then rename, so a crash never leaves a half-written file that would lose the secrets.
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, `${hex.join(',')}\n`, { mode: 0o600 });
    await rename(tmp, path);
  } catch (err) {
    throw new ConfigError(
      'DATA_DIR',
      `cannot save generated secrets in ${dataDir}: ${(err as Error).message}`,
      'Point DATA_DIR at a writable directory (a volume in containers), or set SECRET',
    );
  }
  return { secrets: parseSecretList('generated secrets', hex.join(',')), origin: 'generated', path };
}
