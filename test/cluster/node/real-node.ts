// The test cluster's real node: containerd, runc and the CNI bridge plugin
// under a real kubelet, in a network namespace of its own (node-config.ts
// says why). Started and stopped with the control plane (control-plane.ts,
// `realNode: true`); the images it runs are imported from the OCI archives
// that `npm run images` writes, so pods never pull.
//
// stop() ends every container, then the kubelet and containerd, and puts back
// what they changed on the host (host-state.ts): nothing of the node is left
// but what its temp directory held.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type ApiConnection, apiRequest } from '../api.js';
import { serviceApiIp } from '../component-args.js';
import { ClusterStartError } from '../errors.js';
import { runCommand, runCommandOk } from '../kubectl.js';
import { type Component, delay, killComponentNow, startComponent, stopComponent } from '../processes.js';
import { type Deadline, waitUntil } from '../readiness.js';
import {
  changedSysctls,
  type HostSnapshot,
  mountsUnder,
  processesInNodeCgroups,
  removeCniCache,
  restoreHost,
  snapshotHost,
  unmountUnder,
} from './host-state.js';
import {
  cniConfig,
  containerdConfig,
  containerdSocket,
  kubeletArgs,
  kubeletConfig,
  type NodeLayout,
} from './node-config.js';
import { type Endpoint, startRelay } from './relay.js';

export const realNodeName = 'localhost';
/** The node's address, on its namespace's loopback; pods reach the host's relays here. */
export const realNodeIp = '10.213.255.1';
const podCidr = '10.213.0.0/24';
export const sandboxImage = 'localhost/mtkube/pause:1';
const runcPath = '/usr/sbin/runc';
const cniBinDir = '/usr/lib/cni';
const cniPlugins = ['bridge', 'host-local', 'loopback', 'portmap'];
const nodeBinaries = ['kubelet', 'containerd', 'containerd-shim-runc-v2', 'ctr', 'pause'];

/** Why the real node cannot run on this machine; stable code for the test summary. */
export class RealNodeUnavailableError extends Error {
  readonly code = 'ERR_REAL_NODE_UNAVAILABLE';
  constructor(reason: string) {
    super(`the real test node cannot run here: ${reason}`);
    this.name = 'RealNodeUnavailableError';
  }
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'mtkube');
}

/** Where `npm run images` leaves its archives. */
export function imageArchiveDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.IMAGE_ARCHIVE_DIR || join(cacheRoot(env), 'images');
}

const which = (name: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** The first reason the node cannot run here, or undefined when it can. */
export function realNodePrerequisiteProblem(): string | undefined {
  if (process.platform !== 'linux') return `it needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'it needs root (containers, network namespaces, cgroups)';
  if (!existsSync(runcPath)) return `${runcPath} is missing (bash scripts/install-container-tools.sh)`;
  for (const p of cniPlugins) {
    if (!existsSync(join(cniBinDir, p))) {
      return `CNI plugin ${cniBinDir}/${p} is missing (bash scripts/install-container-tools.sh)`;
    }
  }
  for (const tool of ['ip', 'nsenter', 'iptables', 'socat', 'buildah', 'umount']) {
    if (!which(tool)) return `${tool} is not installed (bash scripts/install-container-tools.sh)`;
  }
  return undefined;
}

export interface RealNodeOptions {
  readonly tempDir: string;
  readonly apiPort: number;
  readonly kubeletPort: number;
  readonly adminKubeconfig: string;
  readonly caCertPath: string;
  readonly admin: ApiConnection;
  readonly deadline: Deadline;
  readonly log: (message: string) => void;
}

export interface RealNode {
  readonly name: string;
  readonly netns: string;
  readonly dir: string;
  /** Makes host 127.0.0.1:hostPort reachable from pods at `${realNodeIp}:port` (same port). */
  exposeHostPort(hostPort: number): Promise<Endpoint>;
  /** Makes the node's 127.0.0.1:nodePort (a hostNetwork pod) reachable on host 127.0.0.1:hostPort. */
  forwardNodePort(nodePort: number, hostPort: number): Promise<void>;
  /** `ctr` against the node's containerd (namespace k8s.io). */
  ctr(args: readonly string[]): Promise<string>;
  components(): readonly Component[];
  stop(): Promise<string[]>;
  /** For exit handlers, which may not wait: end everything and put the host back, synchronously. */
  killNow(): void;
}

async function nodeBinDir(): Promise<string> {
  const script = join(import.meta.dirname, 'build-node.sh');
  const res = await runCommand('bash', [script], { timeoutMs: 30 * 60_000 });
  if (res.code !== 0)
    throw new ClusterStartError(`building the test node failed:\n${res.stderr.slice(-4000)}`);
  return res.stdout.trim().split('\n').pop() ?? '';
}

export async function startRealNode(o: RealNodeOptions): Promise<RealNode> {
  const problem = realNodePrerequisiteProblem();
  if (problem) throw new RealNodeUnavailableError(problem);
  const binDir = await nodeBinDir();
  for (const b of nodeBinaries) {
    if (!existsSync(join(binDir, b)))
      throw new ClusterStartError(`${binDir}/${b} missing after build-node.sh`);
  }
  const archives = imageArchiveDir();
  const id = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const netns = `mtkube-node-${id}`;
  const dir = join(o.tempDir, 'node');
  const relayDir = join(dir, 'relays');
  await mkdir(relayDir, { recursive: true });
  await mkdir(join(dir, 'cni', 'net.d'), { recursive: true });
  const layout: NodeLayout = {
    dir,
    binDir,
    runc: runcPath,
    cniBinDir,
    nodeName: realNodeName,
    nodeIp: realNodeIp,
    podCidr,
    kubeletPort: o.kubeletPort,
    kubeconfig: o.adminKubeconfig,
    clientCaFile: o.caCertPath,
    sandboxImage,
    networkName: `mtkube-${id}`,
    bridgeName: `mtk${id}`.slice(0, 15),
    cgroupRoot: `/mtkube-node-${id}`,
  };
  const components: Component[] = [];
  const snapshot: HostSnapshot = snapshotHost(`mtkube-node-${id}`);
  // Sandbox ids, for their entries in the CNI cache.
  const sandboxIds = new Set<string>();
  let netnsCreated = false;
  const ip = (...args: string[]): Promise<string> => runCommandOk('ip', args, { timeoutMs: 10_000 });
  const ctr = (args: readonly string[]): Promise<string> =>
    runCommandOk(
      join(binDir, 'ctr'),
      ['--address', containerdSocket(layout), '--namespace', 'k8s.io', ...args],
      {
        timeoutMs: 120_000,
      },
    );
  let relayCount = 0;
  const relay = (listen: Endpoint & { netns: string }, target: Endpoint & { netns: string }): void => {
    components.push(...startRelay(relayDir, { name: `r${relayCount++}`, listen, target }));
  };

  const stop = async (): Promise<string[]> => {
    const problems: string[] = [];
    const t = Date.now();
    const kubelet = components.find((c) => c.name === 'kubelet');
    const containerd = components.find((c) => c.name === 'containerd');
    // Containers first, while containerd still runs: kill every task and
    // remove every container (sandboxes included), so the shims exit.
    if (containerd && !containerd.hasExited()) {
      if (kubelet) await stopComponent(kubelet, 5_000);
      try {
        const tasks = (await ctr(['tasks', 'ls', '-q'])).split('\n').filter(Boolean);
        for (const task of tasks) await ctr(['tasks', 'kill', '-s', 'SIGKILL', task]).catch(() => '');
        for (let i = 0; i < 50; i++) {
          const left = (await ctr(['tasks', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
          for (const task of left) await ctr(['tasks', 'delete', '-f', task]).catch(() => '');
          if (left.length === 0) break;
          await delay(100);
        }
        const containers = (await ctr(['containers', 'ls', '-q'])).split('\n').filter(Boolean);
        for (const c of containers) sandboxIds.add(c);
        if (containers.length > 0) await ctr(['containers', 'delete', ...containers]).catch(() => '');
      } catch (err) {
        problems.push(`ending containers: ${(err as Error).message}`);
      }
    }
    for (const c of components.reverse()) await stopComponent(c, 5_000);
    // Whatever still runs in the pods' cgroups, or as a shim of ours, was
    // started by this node: end it by PID.
    for (const pid of [...processesInNodeCgroups(snapshot), ...ourShims(binDir)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    for (let i = 0; i < 50 && processesInNodeCgroups(snapshot).length > 0; i++) await delay(100);
    problems.push(...(await unmountUnder(dir)));
    problems.push(...restoreHost(snapshot));
    if (netnsCreated) {
      const res = await runCommand('ip', ['netns', 'delete', netns], { timeoutMs: 10_000 });
      if (res.code !== 0) problems.push(`ip netns delete ${netns}: ${res.stderr.trim()}`);
    }
    removeCniCache(layout.networkName, [...sandboxIds]);
    const changed = changedSysctls(snapshot);
    if (changed.length > 0) problems.push(`host settings still changed: ${changed.join(', ')}`);
    o.log(
      `real node stopped in ${Date.now() - t}ms${problems.length ? `; problems: ${problems.join('; ')}` : ''}`,
    );
    return problems;
  };

  try {
    await ip('netns', 'add', netns);
    netnsCreated = true;
    await ip('-n', netns, 'link', 'set', 'lo', 'up');
    await ip('-n', netns, 'addr', 'add', `${realNodeIp}/32`, 'dev', 'lo');

    // kubelet -> API server, and API server -> kubelet (which it dials by
    // the node's name, "localhost", at the kubelet's port).
    // Pods (the operator) reach it as Service default/kubernetes, 10.0.0.1:443,
    // the address in the API server's certificate: with no kube-proxy, one
    // DNAT rule in the node's namespace sends that to the relay.
    relay({ netns, host: '0.0.0.0', port: o.apiPort }, { netns: '', host: '127.0.0.1', port: o.apiPort });
    await runCommandOk(
      'ip',
      [
        'netns',
        'exec',
        netns,
        'iptables',
        '-t',
        'nat',
        '-A',
        'PREROUTING',
        '-p',
        'tcp',
        '-d',
        serviceApiIp,
        '--dport',
        '443',
        '-j',
        'DNAT',
        '--to-destination',
        `${realNodeIp}:${o.apiPort}`,
      ],
      { timeoutMs: 10_000 },
    );
    relay(
      { netns: '', host: '127.0.0.1', port: o.kubeletPort },
      { netns, host: '127.0.0.1', port: o.kubeletPort },
    );

    await writeFile(join(dir, 'containerd.toml'), containerdConfig(layout));
    await writeFile(
      join(dir, 'cni', 'net.d', '10-mtkube.conflist'),
      JSON.stringify(cniConfig(layout), null, 2),
    );
    await writeFile(join(dir, 'kubelet-config.json'), JSON.stringify(kubeletConfig(layout), null, 2));

    const inNode = (name: string, bin: string, args: readonly string[]): Component => {
      // nsenter --net, not `ip netns exec`: the latter also gives the process a
      // mount namespace of its own, and the kubelet's volume mounts must be
      // seen by containerd (and by stop(), which unmounts what is left).
      const c = startComponent(
        name,
        'nsenter',
        [
          `--net=/run/netns/${netns}`,
          'env',
          `PATH=${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          bin,
          ...args,
        ],
        join(dir, `${name}.log`),
      );
      components.push(c);
      o.log(`started ${name} (pid ${c.pid}) in netns ${netns}, log ${c.logPath}`);
      return c;
    };
    const containerd = inNode('containerd', join(binDir, 'containerd'), [
      '--config',
      join(dir, 'containerd.toml'),
    ]);
    await waitUntil('containerd', o.deadline, [containerd], async () => {
      await ctr(['version']);
      return true;
    });
    // The pause image (built with the node) and the project's images.
    const toImport = [join(binDir, 'pause.tar')];
    for (const name of ['proxy.tar', 'operator.tar']) {
      if (existsSync(join(archives, name))) toImport.push(join(archives, name));
    }
    for (const archive of toImport) {
      const t = Date.now();
      await ctr(['images', 'import', archive]);
      o.log(`imported ${archive} in ${Date.now() - t}ms`);
    }

    const kubelet = inNode('kubelet', join(binDir, 'kubelet'), kubeletArgs(layout));
    await waitUntil(`node ${realNodeName} Ready`, o.deadline, [containerd, kubelet], async () => {
      const res = await apiRequest(o.admin, 'GET', `/api/v1/nodes/${realNodeName}`);
      if (res.status !== 200) return false;
      const parsed = JSON.parse(res.body) as {
        status?: { conditions?: { type?: string; status?: string }[] };
      };
      return (parsed.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    });
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    name: realNodeName,
    netns,
    dir,
    async exposeHostPort(hostPort: number): Promise<Endpoint> {
      relay({ netns, host: realNodeIp, port: hostPort }, { netns: '', host: '127.0.0.1', port: hostPort });
      await waitForListener(netns, realNodeIp, hostPort);
      return { host: realNodeIp, port: hostPort };
    },
    async forwardNodePort(nodePort: number, hostPort: number): Promise<void> {
      relay({ netns: '', host: '127.0.0.1', port: hostPort }, { netns, host: '127.0.0.1', port: nodePort });
      await waitForListener('', '127.0.0.1', hostPort);
    },
    ctr,
    components: () => components,
    stop,
    killNow(): void {
      for (const c of components) killComponentNow(c);
      for (const pid of [...processesInNodeCgroups(snapshot), ...ourShims(binDir)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone.
        }
      }
      const run = (cmd: string, args: string[]): void => {
        try {
          execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
        } catch {
          // Best effort: the process is exiting.
        }
      };
      // The processes must be gone before their cgroups can be removed.
      run('sh', ['-c', 'sleep 0.5']);
      for (const point of mountsUnder(dir)) run('umount', ['-l', point]);
      restoreHost(snapshot);
      run('ip', ['netns', 'delete', netns]);
      removeCniCache(layout.networkName, []);
    },
  };
}

async function waitForListener(netns: string, host: string, port: number): Promise<void> {
  const [bin, args] = netns === '' ? ['ss', ['-ltnH']] : ['ip', ['netns', 'exec', netns, 'ss', '-ltnH']];
  for (let i = 0; i < 100; i++) {
    const out = await runCommand(bin as string, args as string[], { timeoutMs: 5_000 });
    if (out.stdout.includes(`${host}:${port} `)) return;
    await delay(50);
  }
  throw new ClusterStartError(`relay to ${host}:${port} did not start listening`);
}

/** containerd-shim-runc-v2 processes started from our build (by their executable). */
function ourShims(binDir: string): number[] {
  const shim = join(binDir, 'containerd-shim-runc-v2');
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === shim) pids.push(Number(entry));
    } catch {
      // Not ours to read, or gone.
    }
  }
  return pids;
}
