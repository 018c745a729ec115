// Runs our proxy as a real process tree (primary + workers) for integration tests, straight from
// the TypeScript sources, and stops it by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { freePort } from './free-port.js';

import { freePort } from './free-port.js';

const cli = fileURLToPath(new URL('../../proxy/src/cli.ts', import.meta.url));

export interface ProxyProcess extends ProxyPorts {
  readonly port: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  readonly args?: readonly string[];
  /** Reuse a data directory (to test persistence); a fresh temporary one otherwise. */
  readonly dataDir?: string;
  /** Wait for the "proxy listening" line (default true). */
  readonly waitReady?: boolean;
  readonly port?: number;
  /** A command the proxy runs under, e.g. ['prlimit', '--nofile=1024:1024', '--']. */
  readonly wrap?: readonly string[];
}

export interface ProxyPorts {
  readonly statsPort: number;
  readonly metricsPort: number;
}

const running = new Set<ChildProcess>();

/**
 * Log lines of any proxy started by the tests that contained one of its secrets. The banner
 * (lines starting `[*]`) is the one place a secret may appear; a root hook (test/support/root-hooks.ts)
 * fails the run if anything else ever printed one.
 */
export const secretLeaks: string[] = [];

function findSecretLeaks(output: string, env: Record<string, string>): string[] {
  const secrets = new Set<string>();
  for (const s of (env.SECRET ?? '').split(','))
    if (/^[0-9a-f]{32}$/i.test(s.trim())) secrets.add(s.trim().toLowerCase());
  for (const m of output.matchAll(/^\[\*\] {3}(?:Secret \d+|User \S+): ([0-9a-f]{32})$/gm))
    secrets.add(m[1]!);
  if (secrets.size === 0) return [];
  return output
    .split('\n')
    .filter((line) => !line.startsWith('[*]'))
    .filter((line) => [...secrets].some((secret) => line.toLowerCase().includes(secret)));
}
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startProxy(opts: StartOptions = {}): Promise<ProxyProcess> {
  const port = opts.port ?? (await freePort());
  const statsPort = await freePort();
  const metricsPort = await freePort();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mtkube-test-'));
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PORT: String(port),
    BIND: '127.0.0.1',
    DATA_DIR: dataDir,
    EXTERNAL_IP: '127.0.0.1',
    IP_DETECT_URLS: '',
    WORKERS: '1',
    STATS_PORT: String(statsPort),
    METRICS_PORT: String(metricsPort),
    METRICS_BIND: '127.0.0.1',
    ...opts.env,
  };
  const argv = [process.execPath, '--import', 'tsx', cli, ...(opts.args ?? [])];
  const [command, ...rest] = [...(opts.wrap ?? []), ...argv];
  const child = spawn(command!, rest, {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      secretLeaks.push(...findSecretLeaks(out, childEnv));
      for (const w of waiters) w();
      resolve(code);
    });
  });

  const waitForOutput = (pattern: RegExp, timeoutMs = 20_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(out);
        if (m) {
          done();
          resolve(m[0]);
        } else if (child.exitCode !== null) {
          done();
          reject(new Error(`proxy exited (${child.exitCode}) before printing ${pattern}:\n${out}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`proxy did not print ${pattern} within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    if (opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    return code;
  };

  const proc: ProxyProcess = {
    port,
    statsPort,
    metricsPort,
    dataDir,
    child,
    output: () => out,
    exited,
    waitForOutput,
    stop,
  };
  if (opts.waitReady ?? true) await waitForOutput(/"message":"telemetry listening"/);
  return proc;
}
