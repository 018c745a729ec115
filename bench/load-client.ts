// The benchmark's load, in its own process (pinned away from the proxy): it opens connections as
// apps do, sends packets, checks every echoed byte, and reports to the runner over IPC. The runner
// samples the proxy's CPU between 'warm'/'measure' and 'measured', so only steady load is counted.
import { randomBytes } from 'node:crypto';
import { BenchConnection, type ConnectOptions } from './client-conn.js';
import type {
  ClientMessage,
  HandshakeSpec,
  IdleSpec,
  LatencySpec,
  LoadCounters,
  LoadResult,
  LoadSpec,
  RunnerMessage,
  StreamSpec,
} from './messages.js';

const MAX_ERRORS_KEPT = 5;
const SMALL_PACKET = 64;

function send(message: ClientMessage): void {
  process.send?.(message);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the runner's next message of this type. */
function nextMessage(type: RunnerMessage['type']): Promise<void> {
  return new Promise((resolve) => {
    const listener = (msg: RunnerMessage): void => {
      if (msg.type !== type) return;
      process.off('message', listener);
      resolve();
    };
    process.on('message', listener);
  });
}

/** Payloads for packets: windows over one random block, so making a packet costs nothing. */
class PayloadSource {
  readonly #pool: Buffer;
  readonly #size: number;
  #at = 0;

  constructor(size: number) {
    this.#size = size;
    this.#pool = randomBytes(1_048_576 + size);
  }

  next(): Buffer {
    const out = this.#pool.subarray(this.#at, this.#at + this.#size);
    this.#at += this.#size + 4;
    if (this.#at + this.#size > this.#pool.length) this.#at = (this.#at % 64) & ~3;
    return out;
  }
}

class Tally {
  sentBytes = 0;
  receivedBytes = 0;
  packets = 0;
  handshakes = 0;
  failures = 0;
  readonly errors: string[] = [];
  readonly live = new Set<BenchConnection>();

  fail(err: unknown): void {
    this.failures++;
    if (this.errors.length < MAX_ERRORS_KEPT) this.errors.push((err as Error).message ?? String(err));
  }

  retire(conn: BenchConnection): void {
    this.live.delete(conn);
    this.sentBytes += conn.sentBytes;
    this.receivedBytes += conn.receivedBytes;
    this.packets += conn.verifiedPackets;
  }

  snapshot(): Omit<LoadCounters, 'elapsedMs'> {
    let { sentBytes, receivedBytes, packets } = this;
    for (const c of this.live) {
      sentBytes += c.sentBytes;
      receivedBytes += c.receivedBytes;
      packets += c.verifiedPackets;
    }
    return { sentBytes, receivedBytes, packets, handshakes: this.handshakes };
  }

  result(extra: Partial<LoadResult> = {}): LoadResult {
    return {
      verified: this.failures === 0 && this.errors.length === 0,
      errors: this.errors,
      failures: this.failures,
      packetsVerified: this.snapshot().packets,
      ...extra,
    };
  }
}

function connectOptions(spec: LoadSpec): ConnectOptions {
  return {
    port: spec.port,
    mode: spec.mode,
    secret: Buffer.from(spec.secretHex, 'hex'),
    domain: spec.domain,
    timeoutMs: spec.timeoutMs,
  };
}

/** Resolves when every packet sent on `conn` has come back; rejects on failure or timeout. */
function echoed(conn: BenchConnection, timeoutMs: number): Promise<void> {
  if (conn.failure) return Promise.reject(conn.failure);
  if (conn.inFlight === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo missing after ${timeoutMs} ms`)), timeoutMs);
    conn.onEcho = () => {
      if (conn.inFlight > 0) return;
      clearTimeout(timer);
      conn.onEcho = undefined;
      resolve();
    };
    conn.onFailure = (err) => {
      clearTimeout(timer);
      reject(err);
    };
  });
}

/** Runs the warm-up, then the measured window the runner brackets with its CPU samples. */
async function measuredWindow(spec: StreamSpec | HandshakeSpec, tally: Tally): Promise<void> {
  await sleep(spec.warmupMs);
  send({ type: 'warm', open: tally.live.size });
  await nextMessage('measure');
  const began = performance.now();
  const before = tally.snapshot();
  await sleep(spec.durationMs);
  const after = tally.snapshot();
  send({
    type: 'measured',
    counters: {
      sentBytes: after.sentBytes - before.sentBytes,
      receivedBytes: after.receivedBytes - before.receivedBytes,
      packets: after.packets - before.packets,
      handshakes: after.handshakes - before.handshakes,
      elapsedMs: performance.now() - began,
    },
  });
  await nextMessage('finish');
}

async function runStream(spec: StreamSpec): Promise<LoadResult> {
  const tally = new Tally();
  const payloads = new PayloadSource(spec.packetSize);
  const options = connectOptions(spec);
  let stopping = false;
  const conns = await Promise.all(
    Array.from({ length: spec.connections }, () => BenchConnection.open(options, payloads.next())),
  );
  for (const conn of conns) {
    tally.live.add(conn);
    let blocked = false;
    const fill = (): void => {
      while (!stopping && !blocked && !conn.failure && conn.inFlight < spec.windowBytes) {
        if (!conn.send(payloads.next())) blocked = true;
      }
    };
    conn.socket.on('drain', () => {
      blocked = false;
      fill();
    });
    conn.onEcho = fill;
    conn.onFailure = (err) => tally.fail(err);
    fill();
  }
  await measuredWindow(spec, tally);
  stopping = true;
  await Promise.all(
    conns.map((conn) => echoed(conn, spec.timeoutMs).catch((err: unknown) => tally.fail(err))),
  );
  for (const conn of conns) {
    conn.close();
    tally.retire(conn);
  }
  return tally.result();
}

async function runHandshakes(spec: HandshakeSpec): Promise<LoadResult> {
  const tally = new Tally();
  const payloads = new PayloadSource(SMALL_PACKET);
  const options = connectOptions(spec);
  let stopping = false;
  const loop = async (): Promise<void> => {
    while (!stopping && tally.failures < 100) {
      let conn: BenchConnection | undefined;
      try {
        conn = await BenchConnection.open(options, payloads.next());
        tally.live.add(conn);
        await echoed(conn, spec.timeoutMs);
        tally.handshakes++;
      } catch (err) {
        tally.fail(err);
      } finally {
        if (conn) {
          conn.close();
          tally.retire(conn);
        }
      }
    }
  };
  const loops = Array.from({ length: spec.concurrency }, loop);
  await measuredWindow(spec, tally);
  stopping = true;
  await Promise.all(loops);
  return tally.result();
}

async function runLatency(spec: LatencySpec): Promise<LoadResult> {
  const tally = new Tally();
  const payloads = new PayloadSource(SMALL_PACKET);
  const rtts: number[] = [];
  const conn = await BenchConnection.open(connectOptions(spec));
  tally.live.add(conn);
  try {
    for (let i = 0; i < spec.warmupSamples + spec.samples; i++) {
      const began = process.hrtime.bigint();
      conn.send(payloads.next());
      await echoed(conn, spec.timeoutMs);
      const micros = Number(process.hrtime.bigint() - began) / 1000;
      if (i >= spec.warmupSamples) rtts.push(micros);
      await sleep(spec.gapMs);
    }
  } catch (err) {
    tally.fail(err);
  }
  conn.close();
  tally.retire(conn);
  return tally.result({ rttMicros: rtts.sort((a, b) => a - b) });
}

async function runIdle(spec: IdleSpec): Promise<LoadResult> {
  const tally = new Tally();
  const payloads = new PayloadSource(SMALL_PACKET);
  const options = connectOptions(spec);
  let next = 0;
  const opener = async (): Promise<void> => {
    while (next < spec.count && tally.failures < 100) {
      next++;
      try {
        const conn = await BenchConnection.open(options, payloads.next());
        tally.live.add(conn);
        await echoed(conn, spec.timeoutMs);
        tally.handshakes++;
        conn.onFailure = (err) => tally.fail(err);
      } catch (err) {
        tally.fail(err);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, opener));
  send({ type: 'warm', open: tally.live.size });
  await nextMessage('finish');
  for (const conn of [...tally.live]) {
    conn.close();
    tally.retire(conn);
  }
  return tally.result();
}

function run(spec: LoadSpec): Promise<LoadResult> {
  switch (spec.kind) {
    case 'stream':
      return runStream(spec);
    case 'handshakes':
      return runHandshakes(spec);
    case 'latency':
      return runLatency(spec);
    case 'idle':
      return runIdle(spec);
  }
}

process.on('message', (msg: RunnerMessage) => {
  if (msg.type !== 'run') return;
  run(msg.spec).then(
    (result) => send({ type: 'result', result }),
    (err: Error) =>
      send({
        type: 'result',
        result: { verified: false, errors: [err.message], failures: 1, packetsVerified: 0 },
      }),
  );
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
