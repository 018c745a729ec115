// The benchmark's plan: which systems run, with which load, in which order, and for how long.
// Every system is started fresh for its group and stopped (by PID) before the next one starts.

import { redisAvailable, startRedis } from '../test/support/redis-server.js';
import { startTlsSite, type TlsSite } from '../test/support/tls-site.js';
import { BenchConnection, type ClientMode } from './client-conn.js';
import { measureIdle, measureLatency, measureWindow, newResult, type ScenarioResult } from './measure.js';
import type { HandshakeSpec, IdleSpec, LatencySpec, StreamSpec } from './messages.js';
import { type CryptoFloor, measureCryptoFloor } from './openssl.js';
import type { PeerSpec } from './peers.js';
import { canPin, fileLimit } from './processes.js';
import {
  buildProxy,
  type EchoServer,
  LoadProcess,
  type ProxyBuild,
  type SystemUnderTest,
  startEchoDc,
  startEchoMiddle,
  startMtkube,
  startPeer,
  startPlainRelay,
} from './systems.js';

export interface SuiteOptions {
  readonly quick: boolean;
  readonly fromSource: boolean;
  /** Run this cli.js instead of compiling proxy/src (e.g. dist/proxy/src/cli.js of a release). */
  readonly proxyCli: string | undefined;
  /** Peer proxies to measure beside ours (bench/peers.ts). */
  readonly peers: readonly PeerSpec[];
  /** Scenario id prefixes to run (e.g. "mtkube/bulk", "plain-relay/"); empty runs everything. */
  readonly only: readonly string[];
  /** Progress lines go here (stderr), so stdout stays the table or the JSON. */
  readonly log: (line: string) => void;
}

export interface SuiteReport {
  readonly quick: boolean;
  readonly build: { readonly kind: ProxyBuild['kind']; readonly note: string | undefined };
  readonly pinning: { readonly proxyCpus: string | undefined; readonly loadCpus: string | undefined };
  readonly fdLimit: number;
  readonly crypto: CryptoFloor;
  readonly scenarios: ScenarioResult[];
  readonly notes: string[];
}

interface Durations {
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly latencySamples: number;
  /** Idle connection counts; 0 stands for the largest the file-descriptor limit allows. */
  readonly idleCounts: readonly [number, number];
  readonly settleMs: number;
  readonly opensslSeconds: number;
}

const FULL: Durations = {
  warmupMs: 1500,
  durationMs: 6000,
  latencySamples: 3000,
  idleCounts: [1000, 0],
  settleMs: 2000,
  opensslSeconds: 2,
};
const QUICK: Durations = {
  warmupMs: 300,
  durationMs: 700,
  latencySamples: 100,
  idleCounts: [100, 300],
  settleMs: 300,
  opensslSeconds: 1,
};

/**
 * The load shapes of issue 18's side-by-side table, measured for ours and for every peer: 16
 * connections with 4 packets of 16 KiB in flight each, 64 with 8 of 256 B, and idle connections.
 */
export const SHAPES = {
  bulk: { connections: 16, packetSize: 16_384, inFlight: 4 },
  small: { connections: 64, packetSize: 256, inFlight: 8 },
  idle: { full: 8000, quick: 200 },
} as const;

const BULK_PACKET = 16_384;
const SMALL_PACKET = 256;
const STREAM_CONNECTIONS = 4;
const HANDSHAKE_CONCURRENCY = 8;
const IDLE_WARMUP = 50;
const TIMEOUT_MS = 10_000;
/** fds a worker needs besides its two per client (listener, IPC, stdio, epoll, ...). */
const WORKER_FD_RESERVE = 100;
/** Ephemeral ports per destination on 127.0.0.1 (Linux default 32768-60999). */
const PORT_RANGE = 28_000;

/** The largest idle count one worker can hold: two fds per client (client and DC sockets). */
export function largestIdleCount(limit: number): number {
  return Math.max(1, Math.min(PORT_RANGE, Math.floor((limit - WORKER_FD_RESERVE) / 2)));
}

function target(sut: SystemUnderTest, mode: ClientMode) {
  return {
    port: sut.port,
    mode,
    secretHex: sut.secret.toString('hex'),
    domain: sut.domain,
    timeoutMs: TIMEOUT_MS,
  };
}

/** One connection, one echoed packet: does this system serve this mode at all? */
async function probe(sut: SystemUnderTest, mode: ClientMode): Promise<string | undefined> {
  let conn: BenchConnection | undefined;
  try {
    conn = await BenchConnection.open(
      { port: sut.port, mode, secret: sut.secret, domain: sut.domain, timeoutMs: 5000 },
      Buffer.alloc(64, 7),
    );
    const opened = conn;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo within 5000 ms')), 5000);
      opened.onEcho = () => {
        clearTimeout(timer);
        resolve();
      };
      opened.onFailure = (err) => {
        clearTimeout(timer);
        reject(err);
      };
    });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    conn?.close();
  }
}

/** A group of scenarios on one freshly started system. */
interface Group {
  readonly label: string;
  /** The scenario ids the group can produce, to decide whether to start it at all. */
  readonly ids: readonly string[];
  readonly start: () => Promise<SystemUnderTest>;
  readonly run: (sut: SystemUnderTest) => Promise<void>;
  /** What the group's scenarios become when the system does not start (default: failed). */
  readonly onStartFailure?: (message: string) => void;
}

export async function runSuite(options: SuiteOptions): Promise<SuiteReport> {
  const d = options.quick ? QUICK : FULL;
  const { log } = options;
  const wanted = (id: string): boolean =>
    options.only.length === 0 || options.only.some((p) => id.startsWith(p));
  const pin = canPin();
  const proxyCpus = pin ? '0' : undefined;
  const loadCpus = pin ? '1' : undefined;
  const pinned = pin;
  const scenarios: ScenarioResult[] = [];
  const notes: string[] = [];
  if (!pin) notes.push('taskset is missing or may not pin: proxy and load share every CPU');

  let crypto: CryptoFloor = { speeds: [], directSecondsPerGb: undefined, middleSecondsPerGb: undefined };
  if (wanted('crypto/openssl')) {
    log('crypto floor: openssl speed');
    crypto = await measureCryptoFloor(d.opensslSeconds, proxyCpus);
    if (crypto.error) notes.push(crypto.error);
  }
  log(options.proxyCli ? `proxy: ${options.proxyCli}` : 'compiling proxy/src into bench/.build');
  const build = buildProxy(options.fromSource, options.proxyCli);
  if (build.note) notes.push(build.note);
  const fdLimit = fileLimit();

  const dc = await startEchoDc(loadCpus);
  const loads = [await LoadProcess.start(loadCpus), await LoadProcess.start(loadCpus)] as const;
  const load = loads[0];

  const streamSpec = (sut: SystemUnderTest, mode: ClientMode, packetSize: number): StreamSpec => ({
    kind: 'stream',
    ...target(sut, mode),
    connections: STREAM_CONNECTIONS,
    packetSize,
    windowBytes: packetSize === BULK_PACKET ? 262_144 : 16_384,
    warmupMs: d.warmupMs,
    durationMs: d.durationMs,
  });
  const shapeSpec = (sut: SystemUnderTest, mode: ClientMode, shape: 'bulk' | 'small'): StreamSpec => ({
    kind: 'stream',
    ...target(sut, mode),
    connections: SHAPES[shape].connections,
    packetSize: SHAPES[shape].packetSize,
    windowBytes: SHAPES[shape].packetSize * SHAPES[shape].inFlight,
    warmupMs: d.warmupMs,
    durationMs: d.durationMs,
  });
  const handshakeSpec = (sut: SystemUnderTest, mode: ClientMode): HandshakeSpec => ({
    kind: 'handshakes',
    ...target(sut, mode),
    concurrency: HANDSHAKE_CONCURRENCY,
    warmupMs: d.warmupMs,
    durationMs: d.durationMs,
  });
  const latencySpec = (sut: SystemUnderTest, mode: ClientMode): LatencySpec => ({
    kind: 'latency',
    ...target(sut, mode),
    samples: d.latencySamples,
    warmupSamples: Math.ceil(d.latencySamples / 10),
    gapMs: 1,
  });
  const idleSpec = (sut: SystemUnderTest, mode: ClientMode, count: number): IdleSpec => ({
    kind: 'idle',
    ...target(sut, mode),
    timeoutMs: 30_000,
    count,
    concurrency: 64,
  });

  type Fields = Parameters<typeof newResult>[0];
  /** Runs one scenario if it was asked for; a failure is recorded and the suite goes on. */
  const scenario = async (fields: Fields, body: (result: ScenarioResult) => Promise<void>): Promise<void> => {
    if (!wanted(fields.id)) return;
    const result = newResult(fields);
    scenarios.push(result);
    log(`  ${result.id}`);
    try {
      await body(result);
    } catch (err) {
      result.status = 'failed';
      result.errors.push((err as Error).message);
    }
    if (result.status === 'failed') log(`    FAILED: ${result.errors.join('; ').slice(0, 300)}`);
  };
  const settleUnrun = (fields: Fields, status: 'failed' | 'skipped', reason: string): void => {
    if (!wanted(fields.id)) return;
    const result = newResult(fields);
    result.status = status;
    if (status === 'skipped') result.reason = reason;
    else result.errors.push(reason);
    scenarios.push(result);
    log(`  ${result.id}: ${status} (${reason.slice(0, 300)})`);
  };

  const relayKinds = ['bulk', 'small', 'handshakes'] as const;
  const shapeIdle = options.quick ? SHAPES.idle.quick : SHAPES.idle.full;
  /** The issue-18 stream shapes of one system in one mode (middle: plain clients in middle mode). */
  const shapeFields = (system: string, mode: ClientMode | 'middle'): Fields[] =>
    (['shape-bulk', 'shape-small'] as const).map((kind) => ({
      id: `${system}/${kind}/${mode}`,
      system,
      kind,
      mode,
      workers: 1,
      pinned,
    }));
  /**
   * Idle memory in the shape of the side-by-side table, on a freshly started system (after load
   * the heap has room to spare and new connections would look free), whole process tree.
   */
  const shapeIdleGroup = (
    system: string,
    mode: ClientMode | 'middle',
    clientMode: ClientMode,
    start: () => Promise<SystemUnderTest>,
  ): Group => {
    const f: Fields = {
      id: `${system}/idle/${shapeIdle}-${mode}`,
      system,
      kind: 'idle',
      mode,
      workers: 1,
      pinned,
    };
    return {
      label: `${system}, fresh, ${shapeIdle} idle connections (${mode})`,
      ids: [f.id],
      start,
      run: (sut) => scenario(f, (r) => measure(sut, 'idle', clientMode, r)),
      onStartFailure: failing([f]),
    };
  };
  const shapeSuite = async (sut: SystemUnderTest, fields: readonly Fields[], clientMode: ClientMode) => {
    for (const f of fields) await scenario(f, (r) => measure(sut, f.kind, clientMode, r));
  };
  const relayFields = (system: string, modes: readonly ClientMode[], latencyMode?: ClientMode): Fields[] => [
    ...modes.flatMap((mode) =>
      relayKinds.map((kind) => ({ id: `${system}/${kind}/${mode}`, system, kind, mode, workers: 1, pinned })),
    ),
    ...(latencyMode === undefined
      ? []
      : [
          {
            id: `${system}/latency/${latencyMode}`,
            system,
            kind: 'latency' as const,
            mode: latencyMode,
            workers: 1,
            pinned,
          },
        ]),
  ];
  /** One measurement of `kind` on a started system, with clients in `mode`. */
  const measure = (sut: SystemUnderTest, kind: Fields['kind'], mode: ClientMode, r: ScenarioResult) => {
    if (kind === 'latency') return measureLatency(load, latencySpec(sut, mode), r);
    if (kind === 'shape-bulk' || kind === 'shape-small') {
      return measureWindow(sut, [load], [shapeSpec(sut, mode, kind === 'shape-bulk' ? 'bulk' : 'small')], r);
    }
    if (kind === 'idle') {
      const count = Math.min(shapeIdle, largestIdleCount(fdLimit));
      return measureIdle(
        sut,
        load,
        idleSpec(sut, mode, IDLE_WARMUP),
        idleSpec(sut, mode, count),
        d.settleMs,
        r,
      );
    }
    const spec =
      kind === 'handshakes'
        ? handshakeSpec(sut, mode)
        : streamSpec(sut, mode, kind === 'bulk' ? BULK_PACKET : SMALL_PACKET);
    return measureWindow(sut, [load], [spec], r);
  };
  /** Bulk, small and handshakes for each of the system's modes, then latency in one mode. */
  const relaySuite = async (sut: SystemUnderTest, system: string, latencyMode?: ClientMode) => {
    for (const f of relayFields(system, sut.modes, latencyMode)) {
      await scenario(f, (r) => measure(sut, f.kind, f.mode as ClientMode, r));
    }
  };
  const failing = (fields: readonly Fields[]) => (message: string) => {
    for (const f of fields) settleUnrun(f, 'failed', `could not start: ${message}`);
  };

  const mtkube =
    (workers: number, cpus: string | undefined, fakeTls = false) =>
    () =>
      startMtkube({ build, dcPort: dc.port, workers, cpus, fakeTls });
  const groups: Group[] = [];

  const directShapes = shapeFields('mtkube', 'plain');
  const direct = [...relayFields('mtkube', ['plain', 'dd'], 'plain'), ...directShapes];
  groups.push({
    label: 'our proxy, direct mode, 1 worker',
    ids: direct.map((f) => f.id),
    start: mtkube(1, proxyCpus),
    run: async (sut) => {
      await relaySuite(sut, 'mtkube', 'plain');
      await shapeSuite(sut, directShapes, 'plain');
    },
    onStartFailure: failing(direct),
  });

  // The same handshakes with the replay cache shared through a real redis-server (STATE_URL): every
  // handshake is one more SET NX. The store's CPU is counted with the proxy's (its PID is in the tree).
  const storeFields: Fields[] = (['plain', 'dd'] as const).map((mode) => ({
    id: `mtkube/handshakes-store/${mode}`,
    system: 'mtkube',
    kind: 'handshakes',
    mode,
    workers: 1,
    pinned,
  }));
  groups.push({
    label: 'our proxy, direct mode, 1 worker, shared state in a redis-server',
    ids: storeFields.map((f) => f.id),
    start: async () => {
      if (!redisAvailable()) throw new Error('redis-server is not installed (see the README)');
      const redis = await startRedis();
      try {
        const sut = await startMtkube({
          build,
          dcPort: dc.port,
          workers: 1,
          cpus: proxyCpus,
          fakeTls: false,
          stateUrl: redis.url,
        });
        return {
          ...sut,
          pids: () => [...sut.pids(), redis.child.pid!],
          stop: async () => {
            await sut.stop();
            await redis.stop();
          },
        };
      } catch (err) {
        await redis.stop();
        throw err;
      }
    },
    run: async (sut) => {
      for (const f of storeFields)
        await scenario(f, (r) => measure(sut, 'handshakes', f.mode as ClientMode, r));
    },
    onStartFailure: (message) => {
      for (const f of storeFields) settleUnrun(f, 'skipped', message);
    },
  });

  const tlsShapes = shapeFields('mtkube', 'ee');
  const tls = [...relayFields('mtkube', ['ee']), ...tlsShapes];
  groups.push({
    label: 'our proxy, fake TLS (ee), 1 worker',
    ids: tls.map((f) => f.id),
    start: mtkube(1, proxyCpus, true),
    run: async (sut) => {
      const why = await probe(sut, 'ee');
      if (why === undefined) {
        await relaySuite(sut, 'mtkube');
        return shapeSuite(sut, tlsShapes, 'ee');
      }
      for (const f of tls) {
        settleUnrun(
          f,
          'skipped',
          `the proxy started with FAKE_TLS_DOMAIN but a fake-TLS client got no echo (${why})`,
        );
      }
    },
    onStartFailure: (message) => {
      const why = message.split('\n').slice(1).join(' ').trim().slice(0, 200);
      for (const f of tls) settleUnrun(f, 'skipped', `the proxy does not start with FAKE_TLS_DOMAIN: ${why}`);
    },
  });

  // The same fake-TLS bulk load with records of up to 16 KB instead of the web-server-like schedule
  // (README, Stealth): what the schedule costs, beside the default figure above.
  const recordsOff: Fields[] = [
    { id: 'mtkube/bulk-records-16k/ee', system: 'mtkube', kind: 'bulk', mode: 'ee', workers: 1, pinned },
  ];
  groups.push({
    label: 'our proxy, fake TLS (ee), TLS_RECORD_SIZES=off, 1 worker',
    ids: recordsOff.map((f) => f.id),
    start: () =>
      startMtkube({
        build,
        dcPort: dc.port,
        workers: 1,
        cpus: proxyCpus,
        fakeTls: true,
        extraEnv: { TLS_RECORD_SIZES: 'off' },
      }),
    run: async (sut) => {
      for (const f of recordsOff) await scenario(f, (r) => measure(sut, 'bulk', 'ee', r));
    },
    onStartFailure: failing(recordsOff),
  });

  // And with TLS_RECORD_TIMING=site, following a local stand-in site whose page comes in records
  // of 16 KB, 5 ms apart (the proxy measures it through masking, as it would measure the real
  // site), so that the figure is the cost of the timing, not of smaller records.
  const timing: Fields[] = [
    { id: 'mtkube/bulk-record-timing/ee', system: 'mtkube', kind: 'bulk', mode: 'ee', workers: 1, pinned },
  ];
  let pacedSite: TlsSite | undefined;
  groups.push({
    label: 'our proxy, fake TLS (ee), TLS_RECORD_TIMING=site (5 ms gaps), 1 worker',
    ids: timing.map((f) => f.id),
    start: async () => {
      pacedSite = await startTlsSite({
        chains: { default: { key: 'ec', intermediates: 0 } },
        page: { records: 12, size: 16384, gapMs: 5 },
      });
      return startMtkube({
        build,
        dcPort: dc.port,
        workers: 1,
        cpus: proxyCpus,
        fakeTls: true,
        extraEnv: {
          MASK: 'on',
          MASK_HOST: '127.0.0.1',
          MASK_PORT: String(pacedSite.port),
          TLS_RECORD_TIMING: 'site',
        },
      });
    },
    run: async (sut) => {
      try {
        for (const f of timing) await scenario(f, (r) => measure(sut, 'bulk', 'ee', r));
      } finally {
        await pacedSite?.stop();
      }
    },
    onStartFailure: (message) => {
      void pacedSite?.stop();
      failing(timing)(message);
    },
  });

  const relay = relayFields('plain-relay', ['secretless'], 'secretless');
  groups.push({
    label: 'plain TCP relay (no crypto), 1 worker',
    ids: relay.map((f) => f.id),
    start: () => startPlainRelay({ build, dcPort: dc.port, workers: 1, cpus: proxyCpus }),
    run: (sut) => relaySuite(sut, 'plain-relay', 'secretless'),
    onStartFailure: failing(relay),
  });

  groups.push({
    label: 'no relay: the client straight to the echo DC',
    ids: ['no-relay/latency/secretless'],
    start: async () => dcAsSystem(dc),
    run: (sut) =>
      scenario(
        {
          id: 'no-relay/latency/secretless',
          system: 'no-relay',
          kind: 'latency',
          mode: 'secretless',
          workers: 0,
          pinned,
        },
        (r) => measureLatency(load, latencySpec(sut, 'secretless'), r),
      ),
  });

  for (const workers of [1, 2]) {
    const f: Fields = {
      id: `mtkube/throughput/plain/${workers}w`,
      system: 'mtkube',
      kind: 'throughput',
      mode: 'plain',
      workers,
      pinned: false,
    };
    groups.push({
      label: `our proxy, ${workers} worker(s), unpinned, two load processes`,
      ids: [f.id],
      start: mtkube(workers, undefined),
      run: (sut) =>
        scenario(f, (r) =>
          measureWindow(
            sut,
            loads,
            loads.map(() => streamSpec(sut, 'plain', BULK_PACKET)),
            r,
          ),
        ),
      onStartFailure: failing([f]),
    });
  }

  const [fewIdle, manyIdle] = d.idleCounts;
  const idleCounts = [fewIdle, manyIdle === 0 ? largestIdleCount(fdLimit) : manyIdle];
  for (const count of idleCounts) {
    const f: Fields = {
      id: `mtkube/idle/${count}`,
      system: 'mtkube',
      kind: 'idle',
      mode: 'plain',
      workers: 1,
      pinned,
    };
    groups.push({
      label: `our proxy, fresh, ${count} idle connections`,
      ids: [f.id],
      start: mtkube(1, proxyCpus),
      run: (sut) =>
        scenario(f, (r) =>
          measureIdle(
            sut,
            load,
            idleSpec(sut, 'plain', IDLE_WARMUP),
            idleSpec(sut, 'plain', count),
            d.settleMs,
            r,
          ),
        ),
      onStartFailure: failing([f]),
    });
  }
  for (const count of idleCounts) {
    const f: Fields = {
      id: `plain-relay/idle/${count}`,
      system: 'plain-relay',
      kind: 'idle',
      mode: 'secretless',
      workers: 1,
      pinned,
    };
    groups.push({
      label: `plain relay, fresh, ${count} idle connections`,
      ids: [f.id],
      start: () => startPlainRelay({ build, dcPort: dc.port, workers: 1, cpus: proxyCpus }),
      run: (sut) =>
        scenario(f, (r) =>
          measureIdle(
            sut,
            load,
            idleSpec(sut, 'secretless', IDLE_WARMUP),
            idleSpec(sut, 'secretless', count),
            d.settleMs,
            r,
          ),
        ),
      onStartFailure: failing([f]),
    });
  }

  // Middle mode: clients in plain (intermediate) mode, through the echo middle proxy.
  let middle: EchoServer | undefined;
  const middleFields: Fields[] = [
    ...(['bulk', 'small', 'handshakes', 'latency'] as const).map((kind) => ({
      id: `mtkube/${kind}/middle`,
      system: 'mtkube',
      kind,
      mode: 'middle' as const,
      workers: 1,
      pinned,
    })),
    ...shapeFields('mtkube', 'middle'),
  ];
  groups.push({
    label: 'our proxy, middle-proxy mode, 1 worker',
    ids: middleFields.map((f) => f.id),
    start: () => startMiddleMtkube(),
    run: async (sut) => {
      for (const f of middleFields) await scenario(f, (r) => measure(sut, f.kind, 'plain', r));
    },
    onStartFailure: failing(middleFields),
  });
  const startMiddleMtkube = async () => {
    middle ??= await startEchoMiddle(loadCpus);
    return startMtkube({ build, dcPort: dc.port, workers: 1, cpus: proxyCpus, fakeTls: false, middle });
  };
  groups.push(
    shapeIdleGroup('mtkube', 'plain', 'plain', mtkube(1, proxyCpus)),
    shapeIdleGroup('mtkube', 'ee', 'ee', mtkube(1, proxyCpus, true)),
    shapeIdleGroup('mtkube', 'middle', 'plain', startMiddleMtkube),
  );

  if (options.peers.length === 0) {
    notes.push(
      "no peer proxy: give one with --peer 'NAME:KIND=COMMAND' (KIND direct, middle or tls; see bench/peers.ts and the README)",
    );
  }
  for (const peer of options.peers) {
    // The modes its clients use: plain and dd (handshakes) for direct and middle, ee for tls.
    const mode: ClientMode | 'middle' =
      peer.kind === 'middle' ? 'middle' : peer.kind === 'tls' ? 'ee' : 'plain';
    const clientModes: ClientMode[] =
      peer.kind === 'tls' ? ['ee'] : peer.kind === 'middle' ? ['plain'] : ['plain', 'dd'];
    const handshakes: Fields[] = clientModes.map((m) => ({
      id: `${peer.name}/handshakes/${peer.kind === 'middle' ? 'middle' : m}`,
      system: peer.name,
      kind: 'handshakes',
      mode: peer.kind === 'middle' ? 'middle' : m,
      workers: 1,
      pinned,
    }));
    const fields = [...shapeFields(peer.name, mode), ...handshakes];
    groups.push({
      label: `peer ${peer.name} (${peer.kind}): ${peer.command}`,
      ids: fields.map((f) => f.id),
      start: async () => {
        if (peer.kind === 'middle') middle ??= await startEchoMiddle(loadCpus);
        return startPeer(peer, dc.port, proxyCpus, middle);
      },
      run: async (sut) => {
        const why = await probe(sut, clientModes[0]!);
        if (why !== undefined) {
          for (const f of fields) settleUnrun(f, 'failed', `${clientModes[0]} clients get no echo (${why})`);
          return;
        }
        for (const f of fields) {
          const clientMode = f.kind === 'handshakes' ? clientModes[handshakes.indexOf(f)]! : clientModes[0]!;
          await scenario(f, (r) => measure(sut, f.kind, clientMode, r));
        }
      },
      onStartFailure: failing(fields),
    });
    groups.push(
      shapeIdleGroup(peer.name, mode, clientModes[0]!, async () => {
        if (peer.kind === 'middle') middle ??= await startEchoMiddle(loadCpus);
        return startPeer(peer, dc.port, proxyCpus, middle);
      }),
    );
  }

  try {
    for (const group of groups) {
      if (!group.ids.some(wanted)) continue;
      log(group.label);
      let sut: SystemUnderTest;
      try {
        sut = await group.start();
      } catch (err) {
        (group.onStartFailure ?? (() => {}))((err as Error).message);
        continue;
      }
      try {
        await group.run(sut);
      } finally {
        await sut.stop();
      }
    }
  } finally {
    await Promise.all([...loads.map((l) => l.stop()), dc.stop(), middle?.stop()]);
  }

  return {
    quick: options.quick,
    build: { kind: build.kind, note: build.note },
    pinning: { proxyCpus, loadCpus },
    fdLimit,
    crypto,
    scenarios,
    notes,
  };
}

/** The echo DC itself as a "system", for the round trip without any relay. */
function dcAsSystem(dc: EchoServer): SystemUnderTest {
  return {
    name: 'plain-relay',
    port: dc.port,
    secret: Buffer.alloc(16),
    domain: '',
    modes: ['secretless'],
    process: dc.process,
    pids: () => [dc.process.pid],
    stop: async () => {},
  };
}
