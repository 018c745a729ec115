// The benchmark's two outputs: JSON for machines and a table for people, each with the machine
// the figures came from and the targets of issue 9 beside them.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import type { Figures, ScenarioResult } from './measure.js';
import type { SuiteReport } from './suite.js';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly kernel: string;
  readonly node: string;
  readonly openssl: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // Not Linux: keep what os.cpus() said.
  }
  let openssl = 'unknown';
  try {
    openssl = execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    // No openssl binary.
  }
  return {
    cpuModel,
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 1e9),
    kernel: `Linux ${release()}`,
    node: process.version,
    openssl,
  };
}

/** Issue 9's targets (idle memory: issue 14's), as upper bounds on the figures they name. */
export const TARGETS = {
  directBulkCpuSecondsPerGb: 0.6,
  directSmallCpuSecondsPerGb: 10,
  middleBulkCpuSecondsPerGb: 1.3,
  handshakeCpuMs: 0.15,
  fakeTlsHandshakeCpuMs: 0.3,
  idleRssKbPerConnection: 10,
} as const;

export interface BenchJson extends SuiteReport {
  readonly schema: 1;
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly targets: typeof TARGETS;
  /** PIDs the run started (and saw in the trees it stopped), and those still alive when it ended. */
  readonly processes: { readonly started: readonly number[]; readonly alive: readonly number[] };
}

type Cell = number | string | undefined;

interface Row {
  readonly figure: string;
  readonly mode: string;
  readonly cells: readonly [Cell, Cell];
  readonly target: number | undefined;
  readonly digits: number;
}

const SYSTEMS = ['mtkube', 'plain-relay'] as const;

function find(report: SuiteReport, id: string): ScenarioResult | undefined {
  return report.scenarios.find((s) => s.id === id);
}

function cellOf(s: ScenarioResult | undefined, pick: (f: Figures) => number | undefined): Cell {
  if (s === undefined) return undefined;
  if (s.status === 'skipped') return 'skipped';
  if (s.status === 'failed') return 'FAILED';
  return pick(s.figures);
}

function rowsOf(report: SuiteReport): Row[] {
  const rows: Row[] = [];
  const perMode = (
    figure: string,
    kind: string,
    pick: (f: Figures) => number | undefined,
    digits: number,
    target: (mode: string) => number | undefined,
  ): void => {
    for (const mode of ['plain', 'dd', 'ee', 'middle']) {
      const cells = SYSTEMS.map((system) => {
        const m = system === 'plain-relay' ? (mode === 'plain' ? 'secretless' : undefined) : mode;
        return m === undefined ? undefined : cellOf(find(report, `${system}/${kind}/${m}`), pick);
      }) as unknown as [Cell, Cell];
      if (cells.every((c) => c === undefined)) continue;
      rows.push({ figure, mode, cells, target: target(mode), digits });
    }
  };
  const t = TARGETS;
  perMode(
    'CPU s/GB, 16 KiB packets',
    'bulk',
    (f) => f.cpuSecondsPerGb,
    2,
    (m) =>
      m === 'middle' ? t.middleBulkCpuSecondsPerGb : m === 'ee' ? undefined : t.directBulkCpuSecondsPerGb,
  );
  perMode(
    'MB/s relayed, 16 KiB',
    'bulk',
    (f) => f.throughputMBps,
    0,
    () => undefined,
  );
  perMode(
    'CPU s/GB, 256 B packets',
    'small',
    (f) => f.cpuSecondsPerGb,
    2,
    (m) => (m === 'plain' || m === 'dd' ? t.directSmallCpuSecondsPerGb : undefined),
  );
  perMode(
    'MB/s relayed, 256 B',
    'small',
    (f) => f.throughputMBps,
    0,
    () => undefined,
  );
  perMode(
    'CPU ms per handshake',
    'handshakes',
    (f) => f.cpuMsPerHandshake,
    3,
    (m) => (m === 'ee' ? t.fakeTlsHandshakeCpuMs : t.handshakeCpuMs),
  );
  perMode(
    'handshakes/s',
    'handshakes',
    (f) => f.handshakesPerSecond,
    0,
    () => undefined,
  );
  perMode(
    'CPU ms per handshake, STATE_URL (proxy + redis-server)',
    'handshakes-store',
    (f) => f.cpuMsPerHandshake,
    3,
    () => undefined,
  );
  perMode(
    'handshakes/s, STATE_URL',
    'handshakes-store',
    (f) => f.handshakesPerSecond,
    0,
    () => undefined,
  );
  perMode(
    'RTT 64 B p50, µs',
    'latency',
    (f) => f.p50Micros,
    0,
    () => undefined,
  );
  perMode(
    'RTT 64 B p99, µs',
    'latency',
    (f) => f.p99Micros,
    0,
    () => undefined,
  );
  const idle = report.scenarios.filter(
    (s) => s.kind === 'idle' && s.system === 'mtkube' && !s.id.includes('-'),
  );
  for (const s of idle) {
    const relay = report.scenarios.find(
      (r) =>
        r.kind === 'idle' && r.system === 'plain-relay' && r.figures.connections === s.figures.connections,
    );
    const kb = (f: Figures) =>
      f.workerRssBytesPerConnection === undefined ? undefined : f.workerRssBytesPerConnection / 1024;
    rows.push({
      figure: `idle RSS KB/conn, ${s.figures.connections ?? s.id.split('/').pop()} conns`,
      mode: 'plain',
      cells: [cellOf(s, kb), cellOf(relay, kb)],
      target: s === idle.at(-1) ? t.idleRssKbPerConnection : undefined,
      digits: 1,
    });
  }
  for (const s of report.scenarios.filter((r) => r.kind === 'throughput')) {
    rows.push({
      figure: `MB/s, 16 KiB, ${s.workers} worker${s.workers > 1 ? 's' : ''}, unpinned`,
      mode: s.mode,
      cells: [cellOf(s, (f) => f.throughputMBps), undefined],
      target: undefined,
      digits: 0,
    });
    rows.push({
      figure: `CPU s/GB, same run`,
      mode: s.mode,
      cells: [cellOf(s, (f) => f.cpuSecondsPerGb), undefined],
      target: undefined,
      digits: 2,
    });
  }
  return rows;
}

function fmt(cell: Cell, digits: number): string {
  if (cell === undefined) return '-';
  if (typeof cell === 'string') return cell;
  return cell.toFixed(digits);
}

function verdict(value: Cell, target: number | undefined): string {
  if (target === undefined || typeof value !== 'number') return '';
  if (value <= target) return 'met';
  return `missed by ${Math.round((value / target - 1) * 100)}%`;
}

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

const BUILD_KINDS = {
  compiled: 'compiled JavaScript (bench/.build)',
  source: 'TypeScript sources via tsx',
  given: 'the build given with --cli',
} as const;

export function renderTable(json: BenchJson): string {
  const m = json.machine;
  const lines: string[] = [];
  lines.push(
    `mtkube benchmark, ${json.date}${json.quick ? ' (QUICK: figures are not meaningful)' : ''}, ${Math.round(json.durationSeconds)} s`,
  );
  lines.push(
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGb} GB, ${m.kernel}, Node ${m.node}, ${m.openssl}`,
  );
  const pin =
    json.pinning.proxyCpus === undefined
      ? 'nothing pinned'
      : `proxy on CPU ${json.pinning.proxyCpus}, load and echo DC on CPU ${json.pinning.loadCpus}`;
  lines.push(
    `proxy: ${BUILD_KINDS[json.build.kind]}, ${pin}; CPU = whole process tree (primary + workers), per 10^9 bytes relayed (both directions)`,
  );
  lines.push(
    'modes: plain = intermediate with a plain secret, dd = padded (dd secret), ee = fake TLS, all direct to the echo DC;',
  );
  lines.push('       middle = plain clients in middle-proxy mode (TAG) through the echo middle proxy');
  lines.push('');
  const header = ['figure', 'mode', 'mtkube', 'plain relay', 'target', 'verdict'];
  const body = rowsOf(json).map((r) => [
    r.figure,
    r.mode,
    ...r.cells.map((c) => fmt(c, r.digits)),
    r.target === undefined ? '' : `<= ${r.target}`,
    verdict(r.cells[0], r.target),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  lines.push(pad(header, widths));
  lines.push(
    pad(
      widths.map((w) => '-'.repeat(w)),
      widths,
    ),
  );
  for (const b of body) lines.push(pad(b, widths).trimEnd());
  lines.push('');
  const schedule = find(json, 'mtkube/bulk/ee');
  const sixteen = find(json, 'mtkube/bulk-records-16k/ee');
  if (schedule?.status === 'ok' && sixteen?.status === 'ok') {
    lines.push(
      `fake TLS bulk, record sizes: dynamic (default) ${fmt(schedule.figures.throughputMBps, 0)} MB/s, ` +
        `${fmt(schedule.figures.cpuSecondsPerGb, 2)} CPU s/GB; TLS_RECORD_SIZES=off ` +
        `${fmt(sixteen.figures.throughputMBps, 0)} MB/s, ${fmt(sixteen.figures.cpuSecondsPerGb, 2)} CPU s/GB`,
    );
  }
  const paced = find(json, 'mtkube/bulk-record-timing/ee');
  if (schedule?.status === 'ok' && paced?.status === 'ok') {
    lines.push(
      `fake TLS bulk, TLS_RECORD_TIMING=site (a site with 5 ms gaps): ${fmt(paced.figures.throughputMBps, 0)} MB/s, ` +
        `${fmt(paced.figures.cpuSecondsPerGb, 2)} CPU s/GB, against ${fmt(schedule.figures.throughputMBps, 0)} MB/s with timing off`,
    );
  }
  lines.push(...renderPeerTable(json));
  const noRelay = find(json, 'no-relay/latency/secretless');
  if (noRelay?.status === 'ok') {
    lines.push(
      `no relay (client straight to the echo DC): RTT p50 ${fmt(noRelay.figures.p50Micros, 0)} µs, p99 ${fmt(noRelay.figures.p99Micros, 0)} µs`,
    );
  }
  const c = json.crypto;
  if (c.directSecondsPerGb !== undefined) {
    const rate = (i: number): string => `${((c.speeds[i]?.bytesPerSecond ?? 0) / 1e9).toFixed(2)} GB/s`;
    lines.push(
      `crypto floor (openssl speed, 16 KiB, one core): AES-256-CTR ${rate(0)}, CBC encrypt ${rate(1)}, CBC decrypt ${rate(2)}` +
        ` -> direct ${c.directSecondsPerGb.toFixed(3)} s/GB, middle ${c.middleSecondsPerGb!.toFixed(3)} s/GB`,
    );
  }
  const failed = json.scenarios.filter((s) => s.status === 'failed');
  for (const s of failed) lines.push(`FAILED ${s.id}: ${s.errors.join('; ').slice(0, 400)}`);
  for (const s of json.scenarios.filter((r) => r.status === 'skipped'))
    lines.push(`skipped ${s.id}: ${s.reason}`);
  for (const n of json.notes) lines.push(`note: ${n}`);
  if (json.processes.alive.length > 0) lines.push(`STILL RUNNING: ${json.processes.alive.join(' ')}`);
  const ran = json.scenarios.filter((s) => s.status !== 'skipped');
  lines.push(
    `${ran.filter((s) => s.verified).length} of ${ran.length} scenarios verified every echoed byte` +
      (failed.length > 0 ? `; ${failed.length} failed` : ''),
  );
  return lines.join('\n');
}

/**
 * Issue 18's targets, as the most our figure may be in multiples of each peer's measured in the
 * same row (the issue names one peer per row; a stricter reading holds it against all of them).
 */
export const PEER_RATIO_TARGETS: Record<string, number> = {
  'shape-bulk/middle': 0.9,
  'shape-small/middle': 1.0,
  'handshakes/plain': 1.0,
  'handshakes/dd': 1.0,
  'handshakes/middle': 1.0,
  'shape-bulk/plain': 0.6,
  'shape-bulk/ee': 0.7,
  'idle/plain': 1.0,
};

interface PeerRow {
  readonly figure: string;
  readonly key: string;
  readonly mode: string;
  readonly ours: Cell;
  readonly peers: ReadonlyMap<string, Cell>;
  readonly digits: number;
}

/** The issue-18 shapes: ours beside every peer that ran the same figure in the same mode. */
export function peerRows(report: SuiteReport): PeerRow[] {
  const peerNames = [
    ...new Set(
      report.scenarios.map((s) => s.system).filter((n) => !['mtkube', 'plain-relay', 'no-relay'].includes(n)),
    ),
  ];
  const idleOf = (system: string, mode: string): ScenarioResult | undefined =>
    report.scenarios.find((s) => s.system === system && s.kind === 'idle' && s.id.endsWith(`-${mode}`));
  const kb = (f: Figures) =>
    f.treeRssBytesPerConnection === undefined ? undefined : f.treeRssBytesPerConnection / 1024;
  const specs = [
    {
      figure: 'CPU s/GB, 16 conns x 4 x 16 KiB',
      kind: 'shape-bulk',
      pick: (f: Figures) => f.cpuSecondsPerGb,
      digits: 2,
    },
    {
      figure: 'CPU s/GB, 64 conns x 8 x 256 B',
      kind: 'shape-small',
      pick: (f: Figures) => f.cpuSecondsPerGb,
      digits: 2,
    },
    {
      figure: 'CPU ms per handshake',
      kind: 'handshakes',
      pick: (f: Figures) => f.cpuMsPerHandshake,
      digits: 3,
    },
    { figure: 'idle RSS KB/conn (tree)', kind: 'idle', pick: kb, digits: 1 },
  ];
  const rows: PeerRow[] = [];
  for (const spec of specs) {
    for (const mode of ['plain', 'dd', 'ee', 'middle']) {
      const get = (system: string) =>
        spec.kind === 'idle' ? idleOf(system, mode) : find(report, `${system}/${spec.kind}/${mode}`);
      const peers = new Map<string, Cell>();
      for (const name of peerNames) {
        const s = get(name);
        if (s !== undefined) peers.set(name, cellOf(s, spec.pick));
      }
      if (peers.size === 0) continue;
      rows.push({
        figure: spec.figure,
        key: `${spec.kind}/${mode}`,
        mode,
        ours: cellOf(get('mtkube'), spec.pick),
        peers,
        digits: spec.digits,
      });
    }
  }
  return rows;
}

function ratio(ours: Cell, theirs: Cell): number | undefined {
  return typeof ours === 'number' && typeof theirs === 'number' && theirs > 0 ? ours / theirs : undefined;
}

function renderPeerTable(json: BenchJson): string[] {
  const rows = peerRows(json);
  if (rows.length === 0) return [];
  const names = [...new Set(rows.flatMap((r) => [...r.peers.keys()]))];
  const header = [
    'against peers (same run)',
    'mode',
    'mtkube',
    ...names.flatMap((n) => [n, 'ratio']),
    'target',
    'verdict',
  ];
  const body = rows.map((r) => {
    const target = PEER_RATIO_TARGETS[r.key];
    const ratios = names.map((n) => ratio(r.ours, r.peers.get(n)));
    const worst = Math.max(...ratios.filter((x): x is number => x !== undefined));
    return [
      r.figure,
      r.mode,
      fmt(r.ours, r.digits),
      ...names.flatMap((n, i) => [
        fmt(r.peers.get(n), r.digits),
        ratios[i] === undefined ? '-' : `x${ratios[i]!.toFixed(2)}`,
      ]),
      target === undefined ? '' : `<= x${target}`,
      target === undefined || !Number.isFinite(worst)
        ? ''
        : worst <= target
          ? 'met'
          : `missed by ${Math.round((worst / target - 1) * 100)}%`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [
    pad(header, widths),
    pad(
      widths.map((w) => '-'.repeat(w)),
      widths,
    ),
    ...body.map((b) => pad(b, widths).trimEnd()),
    "ratio = ours / the peer's; a target holds against every peer in its row; one worker on CPU 0 for every system",
    '',
  ];
}
