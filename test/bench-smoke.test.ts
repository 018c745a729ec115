// The benchmark's smoke run, as CI runs it: `npm run bench -- --quick` must start every system,
// run every scenario with every echoed byte checked, write its JSON and leave no process behind.
// Its figures are not checked here: a quick run on a shared machine measures nothing reliably.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { ScenarioResult } from '../bench/measure.js';
import { type BenchJson, peerRows } from '../bench/report.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runBench(args: readonly string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`bench --quick still running after ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A process that has not exited; a zombie (exited, not yet reaped by init) counts as gone. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Scenarios every quick run must have run (fake TLS and middle mode may be skipped with a reason). */
const REQUIRED = [
  'mtkube/bulk/plain',
  'mtkube/small/plain',
  'mtkube/handshakes/plain',
  'mtkube/bulk/dd',
  'mtkube/small/dd',
  'mtkube/handshakes/dd',
  'mtkube/latency/plain',
  'mtkube/throughput/plain/1w',
  'mtkube/throughput/plain/2w',
  'mtkube/idle/100',
  'mtkube/idle/300',
  'plain-relay/bulk/secretless',
  'plain-relay/small/secretless',
  'plain-relay/handshakes/secretless',
  'plain-relay/latency/secretless',
  'plain-relay/idle/100',
  'no-relay/latency/secretless',
  'mtkube/shape-bulk/plain',
  'mtkube/shape-small/plain',
  'mtkube/idle/200-plain',
  'self/shape-bulk/middle',
  'self/shape-small/middle',
  'self/handshakes/middle',
  'self/idle/200-middle',
];

/**
 * A peer as a user gives one, here our own compiled proxy in middle mode: it gets the echo middle
 * proxy's secret and config as files, and its figures are set against ours in the same run.
 */
const SELF_AS_PEER =
  'self:middle=DATA_DIR=. BIND=127.0.0.1 WORKERS=1 MODE=middle PROXY_SECRET_URL={PROXY_SECRET_FILE} ' +
  'PROXY_CONFIG_URL={PROXY_CONFIG_FILE} CONFIG_REFRESH_INTERVAL=0 EXTERNAL_IP=127.0.0.1 IP_DETECT_URLS= ' +
  'STATS_BIND=127.0.0.1 METRICS_PORT=0 BANNER=off LOG_LEVEL=warn {NODE} {BENCH_BUILD}/proxy/src/cli.js';
const MAY_SKIP = /\/(ee|middle)$/;

describe('the benchmark, quick run (npm run bench -- --quick)', function () {
  this.timeout(150_000);
  let dir: string;
  let run: Run;
  let json: BenchJson;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mtkube-bench-smoke-'));
    const out = join(dir, 'quick.json');
    run = await runBench(['--quick', '--json', '--out', out, '--peer', SELF_AS_PEER], 140_000);
    json = JSON.parse(readFileSync(out, 'utf8')) as BenchJson;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits with 0 and prints the same JSON it wrote', () => {
    expect(run.code, run.stderr.slice(-3000)).to.equal(0);
    expect((JSON.parse(run.stdout) as BenchJson).date).to.equal(json.date);
  });

  it('runs every scenario on our proxy, the plain relay and the bare DC', () => {
    const ids = json.scenarios.map((s) => s.id);
    expect(ids).to.include.members(REQUIRED);
  });

  it('sees every echoed byte come back unchanged in every scenario that ran', () => {
    const ran = json.scenarios.filter((s) => s.status !== 'skipped');
    const bad = ran.filter((s) => s.status !== 'ok' || !s.verified);
    expect(bad.map((s: ScenarioResult) => `${s.id}: ${s.errors.join('; ')}`)).to.deep.equal([]);
    for (const s of ran.filter((r) => r.kind !== 'latency' && r.kind !== 'idle')) {
      expect(s.raw.packetsVerified, s.id).to.be.greaterThan(0);
    }
  });

  it('skips only fake TLS and middle mode, and says why', () => {
    for (const s of json.scenarios.filter((r) => r.status === 'skipped')) {
      expect(s.id).to.match(MAY_SKIP);
      expect(s.reason, s.id).to.be.a('string').and.not.equal('');
    }
  });

  it('reports the machine, the crypto floor and a figure for each kind of scenario', () => {
    expect(json.quick).to.equal(true);
    expect(json.machine.cores).to.be.greaterThan(0);
    expect(json.machine.node).to.match(/^v\d+/);
    const figure = (id: string) => json.scenarios.find((s) => s.id === id)?.figures;
    expect(figure('mtkube/bulk/plain')?.cpuSecondsPerGb).to.be.a('number');
    expect(figure('mtkube/handshakes/plain')?.cpuMsPerHandshake).to.be.a('number');
    expect(figure('mtkube/latency/plain')?.p99Micros).to.be.a('number');
    expect(figure('mtkube/idle/300')?.connections).to.equal(300);
    if (json.crypto.error === undefined) expect(json.crypto.directSecondsPerGb).to.be.greaterThan(0);
  });

  it('sets the peer against our proxy in the same shapes, as ratios', () => {
    const rows = peerRows(json).filter((r) => r.mode === 'middle');
    expect(rows.map((r) => r.figure)).to.include.members([
      'CPU s/GB, 16 conns x 4 x 16 KiB',
      'CPU s/GB, 64 conns x 8 x 256 B',
      'CPU ms per handshake',
    ]);
    for (const r of rows) {
      expect(r.ours, r.figure).to.be.a('number');
      expect(r.peers.get('self'), r.figure).to.be.a('number');
    }
  });

  it('leaves none of the processes it started running', () => {
    expect(json.processes.started.length).to.be.greaterThan(5);
    expect(json.processes.alive).to.deep.equal([]);
    const stillThere = json.processes.started.filter(running);
    expect(stillThere).to.deep.equal([]);
  });
});
