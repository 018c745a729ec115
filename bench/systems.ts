// The systems the benchmark measures, each a real process tree on 127.0.0.1: our proxy (compiled
// from proxy/src into bench/.build, or from the sources through tsx), the plain relay baseline, and
// a peer proxy given by command. Also the echo DC and the load clients they are measured with.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/free-port.js';
import type { ClientMode } from './client-conn.js';
import type { ClientMessage, RunnerMessage } from './messages.js';
import { expandCommand, type PeerSpec } from './peers.js';
import { type Launched, launch, processTree, stop } from './processes.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = join(ROOT, 'bench');
const BUILD = join(BENCH, '.build');
const READY_TIMEOUT_MS = 30_000;

function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How the proxy is run: compiled JavaScript (realistic), the sources through tsx, or a given cli.js. */
export interface ProxyBuild {
  readonly kind: 'compiled' | 'source' | 'given';
  /** argv after the node binary, for the proxy and for the plain relay. */
  readonly proxyArgs: readonly string[];
  readonly relayArgs: readonly string[];
  readonly note: string | undefined;
}

function compile(): ProxyBuild | string {
  rmSync(BUILD, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(BENCH, 'tsconfig.proxy.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const cli = join(BUILD, 'proxy/src/cli.js');
  const relay = join(BUILD, 'bench/plain-relay.js');
  if (!existsSync(cli) || !existsSync(relay)) return `${result.stdout}${result.stderr}`.trim();
  const errors = `${result.stdout}`.split('\n').filter((l) => l.includes('error TS'));
  return {
    kind: 'compiled',
    proxyArgs: [cli],
    relayArgs: [relay],
    note:
      errors.length > 0
        ? `proxy/src had ${errors.length} type error(s) when compiled (emitted anyway): ${errors.slice(0, 3).join(' | ')}`
        : undefined,
  };
}

/**
 * Compiles proxy/src (and the plain relay) into bench/.build with the repository's compiler, so
 * the figures are those of the JavaScript that `npm run build` ships, never of a stale dist/.
 * Type errors do not stop the emit; they are noted. Falls back to tsx when nothing was emitted.
 * `cli` runs that proxy build instead (the plain relay is still compiled).
 */
export function buildProxy(fromSource: boolean, cli?: string): ProxyBuild {
  const source: ProxyBuild = {
    kind: 'source',
    proxyArgs: ['--import', 'tsx', join(ROOT, 'proxy/src/cli.ts')],
    relayArgs: ['--import', 'tsx', join(BENCH, 'plain-relay.ts')],
    note: undefined,
  };
  const built = fromSource ? source : compile();
  const base =
    typeof built === 'string'
      ? { ...source, note: `compiling failed, ran the sources through tsx: ${built}` }
      : built;
  if (cli === undefined) return base;
  return {
    ...base,
    kind: 'given',
    proxyArgs: [resolve(cli)],
    note: [base.note, `proxy: ${resolve(cli)}`].filter(Boolean).join('; '),
  };
}

/** mtkube, plain-relay, or a peer's name. */
export type SystemName = string;

export interface SystemUnderTest {
  readonly name: SystemName;
  readonly port: number;
  readonly secret: Buffer;
  readonly domain: string;
  /** The client modes this system is measured with. */
  readonly modes: readonly ClientMode[];
  readonly process: Launched;
  /** Our proxy's metrics port (undefined for the others). */
  readonly metricsPort?: number;
  /** The root process and its workers, alive now. */
  pids(): number[];
  stop(): Promise<void>;
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil(what: string, proc: Launched, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${what} exited before it was ready:\n${proc.output().slice(-2000)}`);
    }
    if (await ready()) return;
    await sleep(100);
  }
  await stop(proc, 'SIGKILL');
  throw new Error(`${what} not ready within ${READY_TIMEOUT_MS} ms:\n${proc.output().slice(-2000)}`);
}

/**
 * NODE_OPTIONS for a system under test: BENCH_PROXY_NODE_OPTIONS (to try Node or V8 flags, e.g.
 * --max-semi-space-size=16) and the CPU profiler when profiling.
 */
function nodeOptions(profileDir: string | undefined): NodeJS.ProcessEnv {
  const flags = [process.env.BENCH_PROXY_NODE_OPTIONS ?? ''];
  if (profileDir !== undefined) flags.push(`--cpu-prof --cpu-prof-dir=${profileDir}`);
  const joined = flags.join(' ').trim();
  return joined === '' ? {} : { NODE_OPTIONS: joined };
}

export interface MtkubeOptions {
  readonly build: ProxyBuild;
  readonly dcPort: number;
  readonly workers: number;
  readonly cpus: string | undefined;
  /** Turn on fake TLS (ee) for this instance; plain and dd are then not offered. */
  readonly fakeTls: boolean;
  /** Write V8 CPU profiles of every process of the tree into this directory. */
  readonly profileDir?: string | undefined;
  /** Middle-proxy mode through this echo middle proxy instead of direct mode. */
  readonly middle?: EchoServer | undefined;
  /** More settings for the proxy (the attack benchmark's users file, throttles). */
  readonly extraEnv?: NodeJS.ProcessEnv;
  /** Shared state store (STATE_URL) for this instance. */
  readonly stateUrl?: string | undefined;
}

/** Any 16 bytes: middle mode needs an advertising tag, the echo middle proxy ignores it. */
const BENCH_TAG = '0123456789abcdef0123456789abcdef';

export const BENCH_DOMAIN = 'bench.example';

export async function startMtkube(options: MtkubeOptions): Promise<SystemUnderTest> {
  const [port, statsPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const secret = randomBytes(16);
  const dataDir = mkdtempSync(join(tmpdir(), 'mtkube-bench-'));
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    PORT: String(port),
    BIND: '127.0.0.1',
    SECRET: secret.toString('hex'),
    WORKERS: String(options.workers),
    DC_ADDRS: `2=127.0.0.1:${options.dcPort}`,
    EXTERNAL_IP: '127.0.0.1',
    IP_DETECT_URLS: '',
    DATA_DIR: dataDir,
    STATS_PORT: String(statsPort),
    STATS_BIND: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    METRICS_BIND: '127.0.0.1',
    BANNER: 'off',
    LOG_LEVEL: 'warn',
    DRAIN_TIMEOUT: '1',
    // Every load client comes from 127.0.0.1: the per-address limit would cap the idle scenario.
    MAX_CONNECTIONS_PER_IP: '0',
  };
  if (options.stateUrl !== undefined) env.STATE_URL = options.stateUrl;
  if (options.fakeTls) {
    env.FAKE_TLS_DOMAIN = BENCH_DOMAIN;
    env.MASK = 'off';
  }
  if (options.middle?.secret !== undefined) {
    // Telegram's two files, as local files: the secret and a config sending every DC to the echo.
    const secretFile = join(dataDir, 'proxy-secret');
    const configFile = join(dataDir, 'proxy-config');
    writeFileSync(secretFile, options.middle.secret);
    writeFileSync(configFile, middleConfigText(options.middle.port));
    Object.assign(env, {
      MODE: 'middle',
      TAG: BENCH_TAG,
      PROXY_SECRET_URL: secretFile,
      PROXY_CONFIG_URL: configFile,
      CONFIG_REFRESH_INTERVAL: '0',
    });
  }
  Object.assign(env, options.extraEnv ?? {}, nodeOptions(options.profileDir));
  const proc = launch([process.execPath, ...options.build.proxyArgs], { env, cpus: options.cpus, cwd: ROOT });
  const cleanup = (): void => rmSync(dataDir, { recursive: true, force: true });
  try {
    await waitUntil(
      'our proxy',
      proc,
      async () => (await httpStatus(`http://127.0.0.1:${metricsPort}/readyz`)) === 200,
    );
  } catch (err) {
    cleanup();
    throw err;
  }
  return {
    name: 'mtkube',
    port,
    metricsPort,
    secret,
    domain: BENCH_DOMAIN,
    modes: options.fakeTls ? ['ee'] : ['plain', 'dd'],
    process: proc,
    pids: () => processTree(proc.pid),
    stop: async () => {
      await stop(proc, 'SIGTERM', 15_000);
      cleanup();
    },
  };
}

export interface RelayOptions {
  readonly build: ProxyBuild;
  readonly dcPort: number;
  readonly workers: number;
  readonly cpus: string | undefined;
  readonly profileDir?: string | undefined;
}

export async function startPlainRelay(options: RelayOptions): Promise<SystemUnderTest> {
  const { build, dcPort, workers, cpus } = options;
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    PORT: String(port),
    WORKERS: String(workers),
    DC_PORT: String(dcPort),
  };
  Object.assign(env, nodeOptions(options.profileDir));
  const proc = launch([process.execPath, ...build.relayArgs], { env, cpus, cwd: ROOT });
  await waitUntil('plain relay', proc, async () => proc.output().includes('plain relay listening'));
  return {
    name: 'plain-relay',
    port,
    secret: Buffer.alloc(16),
    domain: BENCH_DOMAIN,
    modes: ['secretless'],
    process: proc,
    pids: () => processTree(proc.pid),
    stop: () => stop(proc, 'SIGTERM', 5000),
  };
}

/**
 * A peer proxy started by the user's command (bench/peers.ts) in a temporary directory. It is
 * given PEER_VARIABLES[kind] in its environment and in braces in the command, must listen on
 * 127.0.0.1:PORT and send every DC's traffic to DC_ADDR (direct, tls) or to the echo middle proxy
 * at MIDDLE_ADDR (middle, with the proxy secret and a proxy-multi.conf naming it in files).
 */
export async function startPeer(
  peer: PeerSpec,
  dcPort: number,
  cpus: string | undefined,
  middle: EchoServer | undefined,
): Promise<SystemUnderTest> {
  const [port, statsPort] = [await freePort(), await freePort()];
  const secret = randomBytes(16);
  const dir = mkdtempSync(join(tmpdir(), 'mtkube-bench-peer-'));
  const vars: Record<string, string> = {
    PORT: String(port),
    STATS_PORT: String(statsPort),
    NODE: process.execPath,
    BENCH_BUILD: BUILD,
    SECRET: secret.toString('hex'),
    DC_HOST: '127.0.0.1',
    DC_PORT: String(dcPort),
    DC_ADDR: `127.0.0.1:${dcPort}`,
    DOMAIN: BENCH_DOMAIN,
    DOMAIN_HEX: Buffer.from(BENCH_DOMAIN).toString('hex'),
    TLS_SECRET: `ee${secret.toString('hex')}${Buffer.from(BENCH_DOMAIN).toString('hex')}`,
  };
  if (peer.kind === 'middle') {
    if (middle?.secret === undefined) throw new Error('middle-mode peer without the echo middle proxy');
    const secretFile = join(dir, 'proxy-secret');
    const configFile = join(dir, 'proxy-multi.conf');
    writeFileSync(secretFile, middle.secret);
    writeFileSync(configFile, middleConfigText(middle.port));
    Object.assign(vars, {
      TAG: BENCH_TAG,
      MIDDLE_HOST: '127.0.0.1',
      MIDDLE_PORT: String(middle.port),
      MIDDLE_ADDR: `127.0.0.1:${middle.port}`,
      PROXY_SECRET_FILE: secretFile,
      PROXY_CONFIG_FILE: configFile,
    });
  }
  const proc = launch(['sh', '-c', expandCommand(peer.command, vars)], {
    env: { ...process.env, ...vars },
    cpus,
    cwd: dir,
  });
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    await waitUntil(`peer ${peer.name}`, proc, () => tcpAccepts(port));
  } catch (err) {
    cleanup();
    throw err;
  }
  return {
    name: peer.name,
    port,
    secret,
    domain: BENCH_DOMAIN,
    modes: peer.kind === 'tls' ? ['ee'] : ['plain', 'dd'],
    process: proc,
    pids: () => processTree(proc.pid),
    stop: async () => {
      await stop(proc, 'SIGTERM', 10_000);
      cleanup();
    },
  };
}

/** Telegram's proxy-multi.conf, sending every DC (both signs) to one middle proxy. */
function middleConfigText(port: number): string {
  const targets = [1, 2, 3, 4, 5].flatMap((dc) => [dc, -dc]);
  const lines = targets.map((dc) => `proxy_for ${dc} 127.0.0.1:${port};`);
  return ['default 2;', ...lines, ''].join('\n');
}

function tsxArgs(file: string): string[] {
  return ['--import', 'tsx', join(BENCH, file)];
}

export interface EchoServer {
  readonly port: number;
  readonly process: Launched;
  /** The echo middle proxy's proxy secret (what getProxySecret would return). */
  readonly secret: Buffer | undefined;
  stop(): Promise<void>;
}

/** Starts bench/echo-dc.ts or bench/echo-middle.ts and waits for the port it listens on. */
async function startEchoServer(file: string, cpus: string | undefined): Promise<EchoServer> {
  const proc = launch([process.execPath, ...tsxArgs(file)], { env: baseEnv(), cpus, ipc: true, cwd: ROOT });
  type Listening = { type: string; port?: number; secretHex?: string };
  const listening = await new Promise<Listening>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${file} did not start:\n${proc.output()}`)),
      READY_TIMEOUT_MS,
    );
    proc.child.on('message', (msg: Listening) => {
      if (msg.type === 'listening' && msg.port !== undefined) {
        clearTimeout(timer);
        resolve(msg);
      }
    });
    void proc.exited.then(() => reject(new Error(`${file} exited:\n${proc.output()}`)));
  });
  return {
    port: listening.port!,
    process: proc,
    secret: listening.secretHex === undefined ? undefined : Buffer.from(listening.secretHex, 'hex'),
    stop: () => stop(proc, 'SIGTERM', 5000),
  };
}

export const startEchoDc = (cpus: string | undefined): Promise<EchoServer> =>
  startEchoServer('echo-dc.ts', cpus);
export const startEchoMiddle = (cpus: string | undefined): Promise<EchoServer> =>
  startEchoServer('echo-middle.ts', cpus);

/** A load-client process and the conversation with it. */
export class LoadProcess {
  readonly process: Launched;
  readonly #inbox: ClientMessage[] = [];
  #waiter: (() => void) | undefined;

  private constructor(proc: Launched) {
    this.process = proc;
    proc.child.on('message', (msg: ClientMessage) => {
      this.#inbox.push(msg);
      this.#waiter?.();
    });
    void proc.exited.then(() => this.#waiter?.());
  }

  static async start(cpus: string | undefined): Promise<LoadProcess> {
    const proc = launch([process.execPath, ...tsxArgs('load-client.ts')], {
      env: baseEnv(),
      cpus,
      ipc: true,
      cwd: ROOT,
    });
    const load = new LoadProcess(proc);
    await load.receive('ready', READY_TIMEOUT_MS);
    return load;
  }

  send(message: RunnerMessage): void {
    this.process.child.send(message);
  }

  /** The next message of this type (earlier ones of other types are dropped). */
  async receive<T extends ClientMessage['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<ClientMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.#inbox.findIndex((m) => m.type === type);
      if (at >= 0) return this.#inbox.splice(0, at + 1)[at] as Extract<ClientMessage, { type: T }>;
      if (this.process.child.exitCode !== null || this.process.child.signalCode !== null) {
        throw new Error(
          `load client exited while we waited for '${type}':\n${this.process.output().slice(-2000)}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`load client sent no '${type}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve();
        };
      });
    }
  }

  stop(): Promise<void> {
    return stop(this.process, 'SIGTERM', 5000);
  }
}
