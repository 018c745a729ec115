// What the real node changes on the host outside its own directory, recorded
// before it starts and put back after it stops: the kernel settings the
// kubelet tunes, the cgroups it creates, mounts left under the node's
// directory and the CNI plugins' result cache. Everything network-related
// lives in the node's network namespace and goes away with it.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../kubectl.js';

/** Host-wide (not per network namespace) settings the kubelet sets at start. */
export const kubeletSysctls = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
] as const;

const cgroupRoot = '/sys/fs/cgroup';

export interface HostSnapshot {
  readonly sysctls: ReadonlyMap<string, string>;
  /** The node's own cgroup in every hierarchy (the kubelet's cgroupRoot), created for it. */
  readonly cgroupDirsToRemove: readonly string[];
}

function cgroupHierarchies(): string[] {
  if (!existsSync(cgroupRoot)) return [];
  const dirs: string[] = [];
  for (const name of readdirSync(cgroupRoot)) {
    const dir = join(cgroupRoot, name);
    try {
      // cpu and cpuacct are links to cpu,cpuacct: each hierarchy once.
      const real = realpathSync(dir);
      if (statSync(real).isDirectory() && existsSync(join(real, 'cgroup.procs')) && !dirs.includes(real)) {
        dirs.push(real);
      }
    } catch {
      // A symlink such as cpu -> cpu,cpuacct resolves to a listed directory.
    }
  }
  return dirs;
}

/**
 * Records the settings the kubelet will change, and creates the cgroup `name` in every hierarchy
 * for the kubelet's cgroupRoot. A cgroup of its own per node, rather than the usual /kubepods,
 * keeps two nodes on one machine (two developers, or a test run beside \`npm run cluster\`) apart:
 * a kubelet ends every process in a pod cgroup under its root that it does not know.
 */
export function snapshotHost(name: string): HostSnapshot {
  const sysctls = new Map<string, string>();
  for (const key of kubeletSysctls) {
    sysctls.set(key, readFileSync(`/proc/sys/${key}`, 'utf8').trim());
  }
  const cgroupDirsToRemove: string[] = [];
  for (const h of cgroupHierarchies()) {
    const dir = join(h, name);
    mkdirSync(dir, { recursive: true });
    cgroupDirsToRemove.push(dir);
    // A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(h, f))) writeFileSync(join(dir, f), readFileSync(join(h, f), 'utf8').trim());
    }
  }
  return { sysctls, cgroupDirsToRemove };
}

/** Settings that differ from the snapshot now, as `key: now (was before)`. */
export function changedSysctls(snapshot: HostSnapshot): string[] {
  const changed: string[] = [];
  for (const [key, before] of snapshot.sysctls) {
    const now = readFileSync(`/proc/sys/${key}`, 'utf8').trim();
    if (now !== before) changed.push(`${key}: ${now} (was ${before})`);
  }
  return changed;
}

/** Puts the sysctls back and removes the cgroups the node created (they must be empty). */
export function restoreHost(snapshot: HostSnapshot): string[] {
  const problems: string[] = [];
  for (const [key, value] of snapshot.sysctls) {
    try {
      if (readFileSync(`/proc/sys/${key}`, 'utf8').trim() !== value) writeFileSync(`/proc/sys/${key}`, value);
    } catch (err) {
      problems.push(`sysctl ${key}: ${(err as Error).message}`);
    }
  }
  for (const dir of snapshot.cgroupDirsToRemove) {
    if (!existsSync(dir)) continue;
    try {
      removeCgroupTree(dir);
    } catch (err) {
      problems.push(`cgroup ${dir}: ${(err as Error).message}`);
    }
  }
  return problems;
}

// A cgroup directory is removed with rmdir once it has no children and no
// processes; its control files go with it.
function removeCgroupTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  rmdirSync(dir);
}

/** PIDs still in the cgroups the node created (containers not yet ended). */
export function processesInNodeCgroups(snapshot: HostSnapshot): number[] {
  const pids = new Set<number>();
  const walk = (dir: string): void => {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        const pid = Number.parseInt(line, 10);
        if (pid > 0) pids.add(pid);
      }
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(dir, entry.name));
      }
    } catch {
      // Removed meanwhile.
    }
  };
  for (const dir of snapshot.cgroupDirsToRemove) if (existsSync(dir)) walk(dir);
  return [...pids];
}

/** Mount points at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything mounted under `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<string[]> {
  const problems: string[] = [];
  for (const point of mountsUnder(dir)) {
    const res = await runCommand('umount', ['-l', point], { timeoutMs: 10_000 });
    if (res.code !== 0 && !res.stderr.includes('not mounted'))
      problems.push(`umount ${point}: ${res.stderr.trim()}`);
  }
  return problems;
}

/**
 * Removes the CNI plugins' cached results (libcni keeps them in
 * /var/lib/cni/results, whatever the runtime's configuration) of our network
 * and of the loopback network of the sandboxes `sandboxIds`.
 */
export function removeCniCache(networkName: string, sandboxIds: readonly string[]): void {
  const dir = '/var/lib/cni/results';
  if (!existsSync(dir)) return;
  const ours = new Set(sandboxIds.map((id) => `cni-loopback-${id}-lo`));
  for (const name of readdirSync(dir)) {
    if (name.startsWith(`${networkName}-`) || ours.has(name)) rmSync(join(dir, name), { force: true });
  }
}
