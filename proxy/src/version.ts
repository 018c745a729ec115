// The version printed in /stats, /metrics and logs, read from package.json at start.
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // Sources run from proxy/src/, the build from dist/proxy/src/: look two and three levels up.
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'mtkube' && pkg.version) return pkg.version;
    } catch {
      // Not at this level; try the next.
    }
  }
  return 'unknown';
}

export const VERSION = readVersion();
export const VERSION_STRING = `mtkube-${VERSION} node-${process.versions.node}`;
