// Processes the benchmark starts, and what /proc says about them: each one is launched pinned to
// given CPUs with the file-descriptor limit raised to the hard limit, remembered by PID, measured
// as a whole tree (the proxy's primary and its workers) and stopped by PID, never by name.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface LaunchOptions {
  readonly env: NodeJS.ProcessEnv;
  /** A taskset CPU list such as "0" or "1"; undefined leaves the process unpinned. */
  readonly cpus?: string | undefined;
  /** Open a Node IPC channel (the child must be a Node process). */
  readonly ipc?: boolean;
  readonly cwd?: string;
}

export interface Launched {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything it printed so far, stdout and stderr together (last 64 KiB). */
  output(): string;
  readonly exited: Promise<number | null>;
}

const OUTPUT_KEEP = 65_536;
const launched = new Set<Launched>();
/** Every PID this run started or saw in a tree it stopped, to prove at the end that none is left. */
const seen = new Set<number>();

let tasksetChecked: boolean | undefined;

/** taskset exists and may pin to every CPU we were given. */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    try {
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
      tasksetChecked = true;
    } catch {
      tasksetChecked = false;
    }
  }
  return tasksetChecked;
}

/**
 * Starts `argv` through `sh -c` so that the soft file-descriptor limit is raised to the hard one
 * first, and through taskset when `cpus` is given. Both exec, so the PID is the program's own.
 */
export function launch(argv: readonly string[], options: LaunchOptions): Launched {
  const pin = options.cpus !== undefined && canPin() ? ['taskset', '-c', options.cpus] : [];
  const script = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const child = spawn('sh', ['-c', script, 'sh', ...pin, ...argv], {
    env: options.env,
    cwd: options.cwd,
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > OUTPUT_KEEP) out = out.slice(-OUTPUT_KEEP);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const handle: Launched = { pid: child.pid, child, output: () => out, exited };
  launched.add(handle);
  seen.add(child.pid);
  void exited.then(() => launched.delete(handle));
  return handle;
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const tree: number[] = [];
  const queue = [pid];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    const p = queue[i]!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    tree.push(p);
    for (const tid of tasks) {
      try {
        const children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
        for (const c of children.split(/\s+/)) if (c !== '') queue.push(Number(c));
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
  return tree;
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds of one process, all its threads; 0 if it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state (field 3).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return 0;
  }
}

/** CPU seconds per PID, so that a sample taken later can be subtracted process by process. */
export type CpuSample = ReadonlyMap<number, number>;

export function sampleTreeCpu(rootPid: number): CpuSample {
  const sample = new Map<number, number>();
  for (const pid of processTree(rootPid)) sample.set(pid, processCpuSeconds(pid));
  return sample;
}

/**
 * CPU seconds the tree spent between two samples. A process that appeared in between counts
 * from zero; one that vanished in between loses what it spent after the first sample.
 */
export function cpuBetween(before: CpuSample, after: CpuSample): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** Resident set size of one process in bytes (VmRSS); 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function treeRssBytes(rootPid: number): number {
  return processTree(rootPid).reduce((sum, pid) => sum + rssBytes(pid), 0);
}

/** The soft and hard limits on open files a child of ours gets after `ulimit -n $(ulimit -Hn)`. */
export function fileLimit(): number {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? 1_048_576 : Number(out);
  } catch {
    return 1024;
  }
}

/** Running, or at least not yet exited: a zombie waiting to be reaped counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Sends `signal` to the process, waits up to `timeoutMs` for it to exit, then SIGKILLs it and
 * every descendant seen before the signal that is still alive.
 */
export async function stop(handle: Launched, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000) {
  const tree = processTree(handle.pid);
  for (const pid of tree) seen.add(pid);
  if (handle.child.exitCode === null && handle.child.signalCode === null) handle.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([handle.exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') handle.child.kill('SIGKILL');
  await handle.exited;
  const left = (): number[] => tree.slice(1).filter(alive);
  for (const pid of left()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone between the check and the kill.
    }
  }
  for (let i = 0; i < 50 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
}

/** Kills, by PID, everything launched here that still runs (on errors and interrupts). */
export function killAllLaunched(): void {
  for (const handle of launched) {
    for (const pid of processTree(handle.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

/** The PIDs this run started or stopped, and those of them still alive. */
export function processAccount(): { started: number[]; alive: number[] } {
  const started = [...seen].sort((a, b) => a - b);
  return { started, alive: started.filter(alive) };
}
