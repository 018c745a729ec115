// One measurement each: drive the load processes through warm-up, a measured window bracketed by
// CPU samples of the system's whole process tree, and a drain in which every echo is checked.
import type { ClientMode } from './client-conn.js';
import type { LoadCounters, LoadResult, LoadSpec } from './messages.js';
import { cpuBetween, rssBytes, sampleTreeCpu, treeRssBytes } from './processes.js';
import type { LoadProcess, SystemUnderTest } from './systems.js';

export type Status = 'ok' | 'failed' | 'skipped';

export interface Figures {
  /** CPU seconds of the system's process tree per 10^9 bytes relayed, both directions counted. */
  cpuSecondsPerGb?: number;
  /** Bytes relayed per second (both directions), in MB/s (10^6). */
  throughputMBps?: number;
  /** CPU seconds per wall second (1 = one core busy). */
  cpuCores?: number;
  handshakesPerSecond?: number;
  cpuMsPerHandshake?: number;
  p50Micros?: number;
  p90Micros?: number;
  p99Micros?: number;
  maxMicros?: number;
  connections?: number;
  /** (RSS with the connections open - RSS before) / connections, for the worker and the tree. */
  workerRssBytesPerConnection?: number;
  treeRssBytesPerConnection?: number;
  workerRssBytesBefore?: number;
  workerRssBytesAfter?: number;
}

export interface ScenarioResult {
  readonly id: string;
  readonly system: string;
  readonly kind:
    | 'bulk'
    | 'small'
    | 'handshakes'
    | 'latency'
    | 'idle'
    | 'throughput'
    | 'shape-bulk'
    | 'shape-small';
  readonly mode: ClientMode | 'middle';
  readonly workers: number;
  readonly pinned: boolean;
  status: Status;
  verified: boolean;
  reason?: string;
  errors: string[];
  figures: Figures;
  raw: Record<string, number>;
}

export function newResult(
  fields: Pick<ScenarioResult, 'id' | 'system' | 'kind' | 'mode' | 'workers' | 'pinned'>,
): ScenarioResult {
  return { ...fields, status: 'ok', verified: false, errors: [], figures: {}, raw: {} };
}

const PHASE_SLACK_MS = 30_000;

function addCounters(all: LoadCounters[]): LoadCounters {
  return all.reduce((a, c) => ({
    sentBytes: a.sentBytes + c.sentBytes,
    receivedBytes: a.receivedBytes + c.receivedBytes,
    packets: a.packets + c.packets,
    handshakes: a.handshakes + c.handshakes,
    elapsedMs: Math.max(a.elapsedMs, c.elapsedMs),
  }));
}

function settle(result: ScenarioResult, outcomes: readonly LoadResult[]): void {
  result.verified = outcomes.every((o) => o.verified);
  result.errors.push(...outcomes.flatMap((o) => o.errors));
  result.raw.packetsVerified = outcomes.reduce((n, o) => n + o.packetsVerified, 0);
  result.raw.failures = outcomes.reduce((n, o) => n + o.failures, 0);
  if (!result.verified) result.status = 'failed';
}

/**
 * Stream or handshake load from every process at once; CPU is sampled after all of them warmed up
 * and again when all of them reported their measured window.
 */
export async function measureWindow(
  sut: SystemUnderTest,
  loads: readonly LoadProcess[],
  specs: readonly LoadSpec[],
  result: ScenarioResult,
): Promise<void> {
  const budget = (spec: LoadSpec): number =>
    'durationMs' in spec ? spec.warmupMs + spec.durationMs + PHASE_SLACK_MS : PHASE_SLACK_MS;
  for (const [i, load] of loads.entries()) load.send({ type: 'run', spec: specs[i]! });
  try {
    await Promise.all(loads.map((load, i) => load.receive('warm', budget(specs[i]!))));
  } catch (err) {
    // A load that fails before warming up reports why in its result.
    const outcomes = await Promise.all(
      loads.map((l) => l.receive('result', PHASE_SLACK_MS).catch(() => undefined)),
    );
    const reasons = outcomes.flatMap((o) => o?.result.errors ?? []);
    throw new Error(reasons.length > 0 ? reasons.join('; ') : (err as Error).message);
  }
  const cpuBefore = sampleTreeCpu(sut.process.pid);
  for (const load of loads) load.send({ type: 'measure' });
  const measured = await Promise.all(loads.map((load, i) => load.receive('measured', budget(specs[i]!))));
  const cpuAfter = sampleTreeCpu(sut.process.pid);
  for (const load of loads) load.send({ type: 'finish' });
  const outcomes = await Promise.all(loads.map((load) => load.receive('result', PHASE_SLACK_MS)));
  settle(
    result,
    outcomes.map((o) => o.result),
  );

  const counters = addCounters(measured.map((m) => m.counters));
  const cpu = cpuBetween(cpuBefore, cpuAfter);
  const bytes = counters.sentBytes + counters.receivedBytes;
  const seconds = counters.elapsedMs / 1000;
  Object.assign(result.raw, {
    cpuSeconds: cpu,
    bytes,
    seconds,
    handshakes: counters.handshakes,
    packets: counters.packets,
  });
  result.figures.cpuCores = cpu / seconds;
  if (specs[0]!.kind === 'handshakes') {
    result.figures.handshakesPerSecond = counters.handshakes / seconds;
    result.figures.cpuMsPerHandshake =
      counters.handshakes > 0 ? (cpu * 1000) / counters.handshakes : undefined;
  } else {
    result.figures.throughputMBps = bytes / seconds / 1e6;
    result.figures.cpuSecondsPerGb = bytes > 0 ? cpu / (bytes / 1e9) : undefined;
  }
}

/** The p-th percentile of ascending samples (nearest rank, rounding down); undefined when there are none. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function measureLatency(
  load: LoadProcess,
  spec: LoadSpec,
  result: ScenarioResult,
): Promise<void> {
  load.send({ type: 'run', spec });
  const { result: outcome } = await load.receive('result', 120_000);
  settle(result, [outcome]);
  const rtt = outcome.rttMicros ?? [];
  result.raw.samples = rtt.length;
  result.figures.p50Micros = percentile(rtt, 50);
  result.figures.p90Micros = percentile(rtt, 90);
  result.figures.p99Micros = percentile(rtt, 99);
  result.figures.maxMicros = rtt.at(-1);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * RSS per idle authenticated connection on a fresh system with one worker: a small warm-up
 * batch opened and closed first (so one-time costs are not counted per connection), then
 * `spec.count` connections held open while the worker's RSS is read.
 */
export async function measureIdle(
  sut: SystemUnderTest,
  load: LoadProcess,
  warmup: LoadSpec,
  spec: LoadSpec & { kind: 'idle' },
  settleMs: number,
  result: ScenarioResult,
): Promise<void> {
  load.send({ type: 'run', spec: warmup });
  await load.receive('warm', 60_000);
  load.send({ type: 'finish' });
  const warm = await load.receive('result', PHASE_SLACK_MS);
  await sleep(settleMs);
  const worker = (): number => sut.pids()[1] ?? sut.process.pid;
  const workerBefore = rssBytes(worker());
  const treeBefore = treeRssBytes(sut.process.pid);
  load.send({ type: 'run', spec });
  const { open } = await load.receive('warm', 300_000);
  await sleep(settleMs);
  const workerAfter = rssBytes(worker());
  const treeAfter = treeRssBytes(sut.process.pid);
  load.send({ type: 'finish' });
  const { result: outcome } = await load.receive('result', 120_000);
  settle(result, [warm.result, outcome]);
  if (open !== spec.count) {
    result.status = 'failed';
    result.errors.push(`only ${open} of ${spec.count} connections stayed open`);
  }
  result.figures.connections = open;
  result.figures.workerRssBytesBefore = workerBefore;
  result.figures.workerRssBytesAfter = workerAfter;
  if (open > 0) {
    result.figures.workerRssBytesPerConnection = (workerAfter - workerBefore) / open;
    result.figures.treeRssBytesPerConnection = (treeAfter - treeBefore) / open;
  }
}
