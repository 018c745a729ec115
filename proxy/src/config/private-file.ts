// Files that hold secrets or what users did (the secret file, usage, caches) are readable by their
// owner only. New files are written 0600; a file that existed before with looser permissions (an
// old volume, a copy made by hand) is tightened when it is read, since it may never be rewritten.
import { chmod, stat } from 'node:fs/promises';

/**
 * Makes `path` 0600 if group or others may read or write it. Returns what was done; a missing
 * file, or one we may not chmod (a read-only volume), is left alone and reported, never thrown.
 */
export async function keepPrivate(path: string): Promise<'ok' | 'tightened' | 'missing' | 'not-allowed'> {
  try {
    const s = await stat(path);
    if ((s.mode & 0o077) === 0) return 'ok';
    await chmod(path, 0o600);
    return 'tightened';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not-allowed';
  }
}
