// `npm run cluster`: the test control plane for a person, with the real node
// (kubelet, containerd, runc; the images of `npm run images` imported) when
// this machine can run it, else kwok's fake node and one line saying why.
// Prints two lines to paste into another shell, then runs until Ctrl-C or
// SIGTERM. Progress and errors go to stderr, so stdout holds only those lines.
import { realNodeProblem } from '../support/not-run.js';
import { ClusterBinariesMissingError, type ControlPlane, startControlPlane } from './control-plane.js';

const say = (message: string): void => {
  process.stderr.write(`[cluster] ${message}\n`);
};

/** Resolves with the first of SIGINT/SIGTERM/SIGHUP, or with the name of a component that died. */
function untilStopped(cluster: ControlPlane): Promise<string> {
  return new Promise((resolve) => {
    // Signal listeners replace Node's default of exiting at once, so the
    // caller gets to stop every component gracefully and remove the temp dir.
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(name, () => {
        clearInterval(watch);
        resolve(name);
      });
    }
    // The components are detached and unreferenced; this timer is what keeps
    // the process alive, and it notices a component that crashed.
    const watch = setInterval(() => {
      const exited = cluster.exitedComponents();
      if (exited.length > 0) {
        clearInterval(watch);
        resolve(`${exited.join(', ')} exited (logs in ${cluster.tempDir})`);
      }
    }, 2_000);
  });
}

async function main(): Promise<number> {
  const problem = realNodeProblem();
  if (problem) say(`no real node, pods run on kwok's fake node: ${problem}`);
  const cluster = await startControlPlane({
    log: say,
    realNode: !problem,
    ...(problem ? {} : { startTimeoutMs: 900_000 }),
  }).catch((err: unknown) => {
    say(err instanceof Error ? err.message : String(err));
    return err instanceof ClusterBinariesMissingError ? 2 : 1;
  });
  if (typeof cluster === 'number') return cluster;
  say(`Kubernetes ${cluster.kubernetesVersion} at ${cluster.server}, ready in ${cluster.startupMs}ms`);
  if (cluster.realNode) {
    say(
      `real node ${cluster.realNode.name}: try \`helm install mtkube charts/mtkube -n mtkube-system --create-namespace\``,
    );
  }
  say(`logs and data in ${cluster.tempDir}; Ctrl-C stops everything and puts the host back`);
  process.stdout.write(`export KUBECONFIG=${cluster.kubeconfigPath}\nexport PATH=${cluster.binDir}:$PATH\n`);

  const reason = await untilStopped(cluster);
  say(`${reason}: stopping`);
  const crashed = cluster.exitedComponents().length > 0;
  // After a crash keep the logs the message above points to.
  await cluster.stop({ keepTempDir: crashed });
  say('stopped');
  return crashed ? 1 : 0;
}

process.exitCode = await main();
