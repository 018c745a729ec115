// A real redis-server for the shared-state tests: Debian's package (installed by .ci/run and the
// README's setup), started on a free 127.0.0.1 port with no persistence, stopped by its PID.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  /** Stops it (SIGTERM, or SIGKILL to play a crash) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Runs redis-cli against it (for checks), returning stdout. */
  cli(...args: string[]): string;
}

export function redisAvailable(): boolean {
  return spawnSync(REDIS_SERVER, ['--version']).status === 0;
}

/** Starts redis-server; `port` reuses a port (to bring "the same store" back after a kill). */
export async function startRedis(
  opts: { port?: number; password?: string; tls?: { cert: string; key: string } } = {},
): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'mtkube-redis-'));
  // With TLS the only listener is the TLS one (rediss://).
  const listen = opts.tls
    ? [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        opts.tls.cert,
        '--tls-key-file',
        opts.tls.key,
      ]
    : ['--port', String(port)];
  if (opts.tls) listen.push('--tls-auth-clients', 'no');
  const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  if (opts.password !== undefined) args.push('--requirepass', opts.password);
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let failed: Error | undefined;
  child.on('error', (err) => {
    failed = err;
  });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!/Ready to accept connections/.test(out)) {
    if (failed !== undefined) {
      throw new Error(
        `cannot run ${REDIS_SERVER} (${failed.message}): install Debian's redis-server (apt-get install redis-server), as .ci/run does`,
      );
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.once('exit', () => child.kill('SIGKILL'));
  const auth = opts.password === undefined ? [] : ['-a', opts.password, '--no-auth-warning'];
  return {
    port,
    url: `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`,
    child,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
    cli: (...cmd: string[]) =>
      spawnSync('redis-cli', ['-p', String(port), ...auth, ...cmd], { encoding: 'utf8' }).stdout,
  };
}
