// Mocha root hook plugin: after every suite has run, no proxy started by any test may have printed
// one of its secrets outside the start-up banner (test/support/proxy-process.ts collects them).
import type { RootHookObject } from 'mocha';
import { notRunBanner } from './not-run.js';
import { secretLeaks } from './proxy-process.js';

export const mochaHooks: RootHookObject = {
  afterAll(): void {
    const banner = notRunBanner();
    if (banner) console.warn(banner);
    if (secretLeaks.length > 0) {
      throw new Error(`a proxy printed a secret outside its banner:\n${secretLeaks.slice(0, 5).join('\n')}`);
    }
  },
};
