// One control plane per test run, shared by every suite that needs a cluster
// (these smoke tests, later the operator and helm tests): starting one takes
// seconds, a namespace per test takes milliseconds.
import { randomBytes } from 'node:crypto';
import type { Context } from 'mocha';
import { reportNotRun } from '../support/not-run.js';
import { ClusterBinariesMissingError, type ControlPlane, startControlPlane } from './control-plane.js';

let shared: Promise<ControlPlane> | undefined;

/** Starts the shared control plane on first use; later calls get the same one. */
export function getCluster(): Promise<ControlPlane> {
  // MTKUBE_CLUSTER_VERBOSE=1 prints start-up progress (ports, PIDs, logs).
  const verbose = Boolean(process.env.MTKUBE_CLUSTER_VERBOSE);
  shared ??= startControlPlane(verbose ? { log: (m) => console.error(`[cluster] ${m}`) } : {});
  return shared;
}

/**
 * For a mocha `before` hook: the shared cluster, or a skipped suite with the
 * reason printed when the binaries were not built. Any other start failure
 * fails the hook.
 */
export async function getClusterOrSkip(ctx: Context): Promise<ControlPlane> {
  try {
    return await getCluster();
  } catch (err) {
    if (err instanceof ClusterBinariesMissingError) {
      // Allow a later build in the same process to be picked up.
      shared = undefined;
      reportNotRun('Kubernetes tests', `${err.message} (bash test/cluster/build.sh builds them)`);
      if (process.env.CI) throw err;
      ctx.skip();
    }
    throw err;
  }
}

/** Stops the shared control plane, if one was started (root afterAll hook). */
export async function stopSharedCluster(): Promise<void> {
  const pending = shared;
  shared = undefined;
  if (!pending) return;
  try {
    await (await pending).stop();
  } catch {
    // It never started; nothing to stop.
  }
}

/** Creates a fresh namespace for one test; delete it with deleteNamespace. */
export async function createNamespace(cluster: ControlPlane, prefix = 't'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await cluster.kubectlOk(['create', 'namespace', name]);
  return name;
}

export async function deleteNamespace(cluster: ControlPlane, name: string): Promise<void> {
  // Without --wait: namespace finalization runs in the background while the
  // next test goes on in a namespace of its own.
  await cluster.kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
}
