// Mocha root hook plugin (load with `--require test/cluster/root-hooks.ts`):
// stops the shared control plane once, after every suite has run. Without it
// the process-exit handler still kills the components, just less gracefully.
import type { RootHookObject } from 'mocha';
import { stopSharedCluster } from './shared-cluster.js';

export const mochaHooks: RootHookObject = {
  async afterAll(): Promise<void> {
    await stopSharedCluster();
  },
};
