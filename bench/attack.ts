// `npm run bench -- --attack`: the proxy under attack on 127.0.0.1 (issue 13), side by side in one
// run so the figures compare on the same machine at the same moment.
//
// Handshake flood: 16 secrets + 128 users (144 secrets to try per handshake), 2 workers. An attacker
// process pinned to one CPU (bench/attack-flood.ts) sends garbage handshakes from 127.0.0.2..5 as
// fast as it can; meanwhile good clients (dd and ee, users picked at random) connect from 127.0.0.1,
// 8 at a time, and each measures connect -> handshake -> first echo. Three rows: no attack; attack
// with the defences as shipped; attack with the per-source throttle off (FAILED_HANDSHAKE_RATE=0,
// only the cheap per-secret trial left).
//
// Middle-mode non-reader flood: clients that pipeline requests through middle mode and never read
// the answers, next to good clients; the workers' peak RSS with the 1 MiB per-client cap and the
// worker budget as shipped, and with the old 16 MiB per-client cap and no budget to speak of.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClientHello } from '../proxy/src/fake-tls/client.js';
import { validateClientHello } from '../proxy/src/fake-tls/codec.js';
import { secretKeyObject } from '../proxy/src/protocol/key-objects.js';
import { ctrCipher, deriveClientKeys, parseClientHeader } from '../proxy/src/protocol/obfuscated2.js';
import { encodePacket } from '../proxy/src/protocol/transports.js';
import { createClientHeader } from '../test/support/obfuscated2-client-header.js';
import { BenchConnection, type ClientMode } from './client-conn.js';
import { percentile } from './measure.js';
import { cpuBetween, type Launched, launch, processTree, rssBytes, sampleTreeCpu } from './processes.js';
import {
  BENCH_DOMAIN,
  buildProxy,
  type EchoServer,
  ROOT,
  type SystemUnderTest,
  startEchoDc,
  startEchoMiddle,
  startMtkube,
} from './systems.js';

export interface AttackOptions {
  readonly quick: boolean;
  readonly fromSource: boolean;
  readonly proxyCli: string | undefined;
  readonly log: (line: string) => void;
}

export interface AttackRow {
  readonly scenario: string;
  readonly attackerConnections: number;
  readonly attackerPerSecond: number;
  readonly goodAttempts: number;
  readonly goodSucceeded: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  /** CPU seconds per second of the proxy's process tree (primary + 2 workers) during the window. */
  readonly proxyCpu: number;
  readonly peakWorkersRssMiB: number;
  readonly workerRestarts: number;
  /** Proxy CPU per attacker connection, µs, good handshakes' share taken out (handshake rows). */
  readonly cpuMicrosPerAttack: number | undefined;
  /** Middle rows: clients closed for unread answers. */
  readonly flooded: number | undefined;
  readonly seconds: number;
  readonly note: string;
}

const USERS = 128;
const SECRETS = 16;
const GOOD_CONCURRENCY = 8;

/** One row of the table from what a scenario measured; the good clients' figures the same way for all. */
function attackRow(
  scenario: string,
  good: { readonly attempts: number; readonly ok: number; readonly latencies: readonly number[] },
  metrics: string,
  m: {
    readonly attackerConnections: number;
    readonly attackerPerSecond: number;
    readonly proxyCpu: number;
    readonly peakRss: number;
    readonly flooded: number | undefined;
    readonly seconds: number;
    readonly note: string;
  },
): AttackRow {
  return {
    scenario,
    attackerConnections: m.attackerConnections,
    attackerPerSecond: m.attackerPerSecond,
    goodAttempts: good.attempts,
    goodSucceeded: good.ok,
    p50Ms: percentile(good.latencies, 50),
    p99Ms: percentile(good.latencies, 99),
    proxyCpu: m.proxyCpu,
    peakWorkersRssMiB: m.peakRss / 2 ** 20,
    workerRestarts: metricValue(metrics, 'mtproxy_worker_restarts_total'),
    cpuMicrosPerAttack: undefined,
    flooded: m.flooded,
    seconds: m.seconds,
    note: m.note,
  };
}

function metricsText(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = get(`http://127.0.0.1:${port}/metrics`, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(''));
  });
}

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/** The workers of a proxy tree: every process but the root (and the sh it was started through). */
function workersRss(root: number): number {
  return processTree(root)
    .slice(1)
    .reduce((sum, pid) => sum + rssBytes(pid), 0);
}

interface Secrets {
  readonly env: NodeJS.ProcessEnv;
  readonly keys: readonly Buffer[];
  readonly dir: string;
}

function makeSecrets(): Secrets {
  const dir = mkdtempSync(join(tmpdir(), 'mtkube-attack-'));
  const plain = Array.from({ length: SECRETS }, () => randomBytes(16));
  const users = Array.from({ length: USERS }, () => randomBytes(16));
  const yaml = ['users:', ...users.map((k, i) => `  user${i}:\n    secret: ${k.toString('hex')}`)].join('\n');
  writeFileSync(join(dir, 'users.yaml'), `${yaml}\n`);
  return {
    env: { SECRET: plain.map((k) => k.toString('hex')).join(','), USERS_FILE: join(dir, 'users.yaml') },
    keys: [...plain, ...users],
    dir,
  };
}

/** Good clients from 127.0.0.1 until `until`, GOOD_CONCURRENCY at a time; latencies in ms. */
async function goodClients(
  port: number,
  keys: readonly Buffer[],
  until: number,
): Promise<{ attempts: number; ok: number; latencies: number[] }> {
  const latencies: number[] = [];
  let attempts = 0;
  const one = async (n: number): Promise<void> => {
    const mode: ClientMode = n % 2 === 0 ? 'dd' : 'ee';
    const secret = keys[Math.floor(Math.random() * keys.length)]!;
    const began = performance.now();
    let conn: BenchConnection | undefined;
    try {
      const payload = randomBytes(96);
      payload.writeUInt32LE(0x01020304, 0);
      conn = await BenchConnection.open(
        { port, mode, secret, domain: BENCH_DOMAIN, timeoutMs: 5000 },
        payload,
      );
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no echo in 5 s')), 5000);
        conn!.onEcho = () => {
          clearTimeout(timer);
          resolve();
        };
        conn!.onFailure = (err) => {
          clearTimeout(timer);
          reject(err);
        };
      });
      latencies.push(performance.now() - began);
    } catch {
      // counted as a failure: attempts - latencies.length
    } finally {
      conn?.close();
    }
  };
  await Promise.all(
    Array.from({ length: GOOD_CONCURRENCY }, async (_, lane) => {
      for (let n = lane; Date.now() < until; n += GOOD_CONCURRENCY) {
        attempts++;
        await one(n);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { attempts, ok: latencies.length, latencies };
}

interface Flood {
  readonly process: Launched;
  result(): Promise<{ opened: number }>;
}

function startFlood(port: number, seconds: number, cpus: string | undefined): Flood {
  const proc = launch(
    [process.execPath, '--import', 'tsx', join(ROOT, 'bench/attack-flood.ts'), String(port), String(seconds)],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, cpus, cwd: ROOT },
  );
  return {
    process: proc,
    result: async () => {
      await proc.exited;
      const line = proc
        .output()
        .split('\n')
        .find((l) => l.startsWith('{'));
      return line === undefined ? { opened: 0 } : (JSON.parse(line) as { opened: number });
    },
  };
}

/** Samples the workers' RSS every 200 ms until stopped; returns the peak. */
function rssWatcher(root: number): { stop(): number } {
  let peak = workersRss(root);
  const timer = setInterval(() => {
    peak = Math.max(peak, workersRss(root));
  }, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, workersRss(root));
    },
  };
}

async function handshakeRow(
  scenario: string,
  note: string,
  sut: SystemUnderTest,
  metricsPort: number,
  keys: readonly Buffer[],
  seconds: number,
  attack: boolean,
): Promise<AttackRow> {
  // Every user's client has used the proxy before the window (as real users have).
  await goodClients(sut.port, keys, Date.now() + 1500);
  const cpuBefore = sampleTreeCpu(sut.process.pid);
  const rss = rssWatcher(sut.process.pid);
  const began = Date.now();
  const flood = attack ? startFlood(sut.port, seconds, '1') : undefined;
  const good = await goodClients(sut.port, keys, began + seconds * 1000);
  const floodResult = (await flood?.result()) ?? { opened: 0 };
  const elapsed = (Date.now() - began) / 1000;
  const cpu = cpuBetween(cpuBefore, sampleTreeCpu(sut.process.pid)) / elapsed;
  const peak = rss.stop();
  const metrics = await metricsText(metricsPort);
  return attackRow(scenario, good, metrics, {
    attackerConnections: floodResult.opened,
    attackerPerSecond: Math.round(floodResult.opened / seconds),
    proxyCpu: cpu,
    peakRss: peak,
    flooded: undefined,
    seconds: elapsed,
    note,
  });
}

/** A middle-mode client that pipelines `bytes` of requests and never reads an answer. */
function nonReader(port: number, secret: Buffer, bytes: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.once('connect', () => {
      s.pause();
      const h = createClientHeader(randomBytes, secret, 'intermediate', 2);
      s.write(h.wire);
      const packet = randomBytes(32 * 1024);
      packet.writeUInt32LE(0x11223344, 0);
      const frame = h.encryptor.update(Buffer.concat(encodePacket('intermediate', packet, randomBytes)));
      // Re-encrypting each frame is the client's cost, not the proxy's: one frame, sent again
      // through the stream cipher, is a valid new packet each time.
      const frames = Math.ceil(bytes / packet.length);
      let sent = 0;
      const pump = (): void => {
        while (sent < frames) {
          sent++;
          if (!s.write(h.encryptor.update(frame))) {
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
      resolve(s);
    });
  });
}

async function middleRow(
  scenario: string,
  note: string,
  extraEnv: NodeJS.ProcessEnv,
  build: ReturnType<typeof buildProxy>,
  echo: EchoServer,
  quick: boolean,
): Promise<AttackRow> {
  const sut = await startMtkube({
    build,
    dcPort: 1,
    workers: 2,
    cpus: '0',
    fakeTls: false,
    middle: echo,
    extraEnv,
  });
  const keys = [sut.secret];
  try {
    const seconds = quick ? 4 : 10;
    const count = quick ? 40 : 200;
    const perClient = 8 * 2 ** 20;
    await goodClients(sut.port, keys, Date.now() + 1000);
    const cpuBefore = sampleTreeCpu(sut.process.pid);
    const rss = rssWatcher(sut.process.pid);
    const began = Date.now();
    const flooders = await Promise.all(
      Array.from({ length: count }, () => nonReader(sut.port, sut.secret, perClient)),
    );
    const good = await goodClients(sut.port, keys, began + seconds * 1000);
    const elapsed = (Date.now() - began) / 1000;
    const cpu = cpuBetween(cpuBefore, sampleTreeCpu(sut.process.pid)) / elapsed;
    const peak = rss.stop();
    for (const s of flooders) s.destroy();
    const metrics = await metricsText(sut.metricsPort ?? 0);
    return attackRow(scenario, good, metrics, {
      attackerConnections: count,
      attackerPerSecond: 0,
      proxyCpu: cpu,
      peakRss: peak,
      flooded: metricValue(metrics, 'mtproxy_middle_clients_flooded_total'),
      seconds: elapsed,
      note,
    });
  } finally {
    await sut.stop();
  }
}

export interface TrialCost {
  readonly what: string;
  readonly beforeMicros: number;
  readonly nowMicros: number;
}

/**
 * CPU of the bench process per garbage handshake with 144 secrets, the trial as it was before
 * issue 13 (key hashes and a CTR cipher per secret; an HMAC per secret) against the trial now
 * (one hash and one AES block per secret; the whole hello validation, HMAC per secret), interleaved in
 * rounds so both see the same machine.
 */
export function measureTrialCost(rounds: number): TrialCost[] {
  const secrets = Array.from({ length: SECRETS + USERS }, () => randomBytes(16));
  const header = randomBytes(64);
  const hello = buildClientHello({
    secret: randomBytes(16),
    domain: BENCH_DOMAIN,
    now: Math.floor(Date.now() / 1000),
    random: randomBytes,
  }).hello;
  const zero = Buffer.alloc(32);
  const oldHeader = (): void => {
    for (const secret of secrets) {
      const keys = deriveClientKeys(header, secret);
      ctrCipher(keys.decrypt).update(header);
    }
  };
  const newHeader = (): void => {
    parseClientHeader(header, secrets);
  };
  const oldHello = (): void => {
    for (const secret of secrets) {
      createHmac('sha256', secretKeyObject(secret))
        .update(hello.subarray(0, 11))
        .update(zero)
        .update(hello.subarray(43))
        .digest();
    }
  };
  const policy = { secrets, domains: [], now: () => Math.floor(Date.now() / 1000) };
  const newHello = (): void => {
    validateClientHello(hello, policy);
  };
  const time = (f: () => void, n: number): number => {
    const began = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const used = process.cpuUsage(began);
    return (used.user + used.system) / n;
  };
  const pairs: [string, () => void, () => void][] = [
    ['obfuscated2 header, 144 secrets', oldHeader, newHeader],
    ['fake-TLS hello, 144 secrets', oldHello, newHello],
  ];
  return pairs.map(([what, before, now]) => {
    before();
    now();
    let b = 0;
    let a = 0;
    for (let r = 0; r < rounds; r++) {
      b += time(before, 20);
      a += time(now, 20);
    }
    return { what, beforeMicros: b / rounds, nowMicros: a / rounds };
  });
}

export function renderTrialTable(rows: readonly TrialCost[]): string {
  return [
    '| garbage handshake | CPU µs before issue 13 | CPU µs now |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.beforeMicros.toFixed(0)} | ${r.nowMicros.toFixed(0)} |`),
  ].join('\n');
}

export async function runAttack(options: AttackOptions): Promise<AttackRow[]> {
  const build = buildProxy(options.fromSource, options.proxyCli);
  const seconds = options.quick ? 4 : 15;
  const rows: AttackRow[] = [];
  const secrets = makeSecrets();
  const dc = await startEchoDc('1');
  try {
    const variants: [string, string, NodeJS.ProcessEnv, boolean][] = [
      ['handshakes, no attack', 'baseline', {}, false],
      ['handshakes, garbage flood', 'defences as shipped', {}, true],
      [
        'handshakes, garbage flood',
        'FAILED_HANDSHAKE_RATE=0 (cheap trial only)',
        { FAILED_HANDSHAKE_RATE: '0' },
        true,
      ],
    ];
    for (const [scenario, note, env, attack] of variants) {
      options.log(`attack: ${scenario} (${note})`);
      const sut = await startMtkube({
        build,
        dcPort: dc.port,
        workers: 2,
        cpus: '0',
        fakeTls: true,
        extraEnv: { ...secrets.env, MODES: 'secure,tls', MAX_CONNECTIONS_PER_IP: '500', ...env },
      });
      try {
        rows.push(await handshakeRow(scenario, note, sut, sut.metricsPort!, secrets.keys, seconds, attack));
      } finally {
        await sut.stop();
      }
    }
  } finally {
    await dc.stop();
    rmSync(secrets.dir, { recursive: true, force: true });
  }
  // The attack's own cost: the proxy's CPU minus what its good handshakes cost at the no-attack
  // row's price per handshake, per attacker connection.
  const base = rows[0]!;
  const perGood = (base.proxyCpu * base.seconds) / Math.max(1, base.goodAttempts);
  for (const [i, r] of rows.entries()) {
    if (r.attackerConnections === 0) continue;
    const extra = r.proxyCpu * r.seconds - perGood * r.goodAttempts;
    rows[i] = { ...r, cpuMicrosPerAttack: Math.max(0, (extra * 1e6) / r.attackerConnections) };
  }
  const echo = await startEchoMiddle('1');
  try {
    for (const [note, env] of [
      ['1 MiB per client, 256 MiB per worker (as shipped)', {}],
      [
        '16 MiB per client (the old cap), budget 1 TiB',
        { MIDDLE_CLIENT_BACKLOG: '16777216', MIDDLE_BACKLOG_BUDGET: String(2 ** 40) },
      ],
    ] as const) {
      options.log(`attack: middle non-readers (${note})`);
      rows.push(await middleRow('middle, non-reader flood', note, env, build, echo, options.quick));
    }
  } finally {
    await echo.stop();
  }
  return rows;
}

const fmt = (v: number | undefined, digits = 1): string => (v === undefined ? '-' : v.toFixed(digits));

export function renderAttackTable(rows: readonly AttackRow[]): string {
  const head =
    '| scenario | variant | attacker conns (per s) | good handshakes ok | p50 ms | p99 ms | proxy CPU (cores) | CPU µs per attack conn | non-readers closed | workers peak RSS MiB | worker restarts |';
  const sep = '|---|---|---|---|---|---|---|---|---|---|---|';
  const lines = rows.map(
    (r) =>
      `| ${r.scenario} | ${r.note} | ${r.attackerConnections} (${r.attackerPerSecond}) | ${r.goodSucceeded}/${r.goodAttempts} (${fmt((100 * r.goodSucceeded) / Math.max(1, r.goodAttempts))}%) | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.proxyCpu, 2)} | ${fmt(r.cpuMicrosPerAttack, 0)} | ${r.flooded ?? '-'} | ${fmt(r.peakWorkersRssMiB, 0)} | ${r.workerRestarts} |`,
  );
  return [head, sep, ...lines].join('\n');
}
