// `npm run bench -- --profile`: runs our proxy (and the plain relay, for comparison) under bulk,
// small-packet and handshake load with V8's CPU profiler on in every process of the tree
// (NODE_OPTIONS reaches cluster workers too), then summarises the worker's and the primary's
// profiles. Profiling slows the proxy down, so these runs are separate from the measured ones and
// their figures are only a guide.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientMode } from './client-conn.js';
import { measureWindow, newResult } from './measure.js';
import type { LoadSpec } from './messages.js';
import { canPin } from './processes.js';
import { type CpuProfile, ourInclusive, renderSummary, summarizeProfile } from './profile-summary.js';
import {
  buildProxy,
  type EchoServer,
  LoadProcess,
  type SystemUnderTest,
  startEchoDc,
  startEchoMiddle,
  startMtkube,
  startPlainRelay,
} from './systems.js';

export interface ProfileOptions {
  readonly outDir: string;
  readonly quick: boolean;
  readonly fromSource: boolean;
  readonly proxyCli: string | undefined;
  /** Profile runs whose name starts with one of these (e.g. "bulk"); empty runs all. */
  readonly only: readonly string[];
  readonly log: (line: string) => void;
}

type Target = 'direct' | 'fake-tls' | 'middle' | 'plain-relay';

interface ProfileRun {
  readonly name: string;
  readonly target: Target;
  readonly mode: ClientMode;
  readonly load: 'bulk' | 'small' | 'handshakes';
}

const RUNS: readonly ProfileRun[] = [
  { name: 'bulk-16k-plain', target: 'direct', mode: 'plain', load: 'bulk' },
  { name: 'bulk-16k-relay', target: 'plain-relay', mode: 'secretless', load: 'bulk' },
  { name: 'bulk-16k-middle', target: 'middle', mode: 'plain', load: 'bulk' },
  { name: 'small-256-plain', target: 'direct', mode: 'plain', load: 'small' },
  { name: 'small-256-middle', target: 'middle', mode: 'plain', load: 'small' },
  { name: 'handshakes-plain', target: 'direct', mode: 'plain', load: 'handshakes' },
  { name: 'handshakes-dd', target: 'direct', mode: 'dd', load: 'handshakes' },
  { name: 'handshakes-ee', target: 'fake-tls', mode: 'ee', load: 'handshakes' },
  { name: 'handshakes-middle', target: 'middle', mode: 'plain', load: 'handshakes' },
];

/** The profile files in `dir` written by process `pid` (CPU.<date>.<time>.<pid>.<tid>.<seq>). */
function profilesOf(dir: string, pid: number): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid))
    .map((f) => join(dir, f));
}

export async function runProfiles(options: ProfileOptions): Promise<string> {
  const warmupMs = options.quick ? 300 : 2000;
  const durationMs = options.quick ? 1000 : 8000;
  const cpus = canPin() ? { proxy: '0', load: '1' } : { proxy: undefined, load: undefined };
  const build = buildProxy(options.fromSource, options.proxyCli);
  const runs = RUNS.filter(
    (r) => options.only.length === 0 || options.only.some((p) => r.name.startsWith(p)),
  );
  const dc = await startEchoDc(cpus.load);
  const load = await LoadProcess.start(cpus.load);
  let middle: EchoServer | undefined;

  const start = async (target: Target, profileDir: string): Promise<SystemUnderTest> => {
    if (target === 'plain-relay') {
      return startPlainRelay({ build, dcPort: dc.port, workers: 1, cpus: cpus.proxy, profileDir });
    }
    if (target === 'middle') middle ??= await startEchoMiddle(cpus.load);
    return startMtkube({
      build,
      dcPort: dc.port,
      workers: 1,
      cpus: cpus.proxy,
      fakeTls: target === 'fake-tls',
      middle: target === 'middle' ? middle : undefined,
      profileDir,
    });
  };
  const specFor = (run: ProfileRun, sut: SystemUnderTest): LoadSpec => {
    const base = {
      port: sut.port,
      mode: run.mode,
      secretHex: sut.secret.toString('hex'),
      domain: sut.domain,
    };
    const window = { warmupMs, durationMs, timeoutMs: 10_000 };
    if (run.load === 'handshakes') return { kind: 'handshakes', ...base, ...window, concurrency: 8 };
    const bulk = run.load === 'bulk';
    return {
      kind: 'stream',
      ...base,
      ...window,
      connections: 4,
      packetSize: bulk ? 16_384 : 256,
      windowBytes: bulk ? 262_144 : 16_384,
    };
  };

  const out: string[] = [];
  const summaries: Record<string, unknown> = {};
  mkdirSync(options.outDir, { recursive: true });
  try {
    for (const run of runs) {
      options.log(`profiling ${run.name}`);
      const dir = join(options.outDir, run.name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      let sut: SystemUnderTest;
      try {
        sut = await start(run.target, dir);
      } catch (err) {
        out.push(`== ${run.name}: did not start (${(err as Error).message.split('\n')[0]})`);
        continue;
      }
      const [primaryPid, workerPid] = sut.pids();
      const result = newResult({
        id: run.name,
        system: sut.name,
        kind: run.load,
        mode: run.mode,
        workers: 1,
        pinned: cpus.proxy !== undefined,
      });
      try {
        await measureWindow(sut, [load], [specFor(run, sut)], result);
      } catch (err) {
        result.status = 'failed';
        result.errors.push((err as Error).message);
      }
      await sut.stop();
      if (result.status !== 'ok') {
        out.push(`== ${run.name}: load failed (${result.errors.join('; ').slice(0, 200)})`);
        continue;
      }
      const figures = Object.entries(result.figures)
        .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(3) : v}`)
        .join(', ');
      out.push(`== ${run.name} (under the profiler: ${figures})`);
      for (const [role, pid] of [
        ['worker', workerPid],
        ['primary', primaryPid],
      ] as const) {
        const file = pid === undefined ? undefined : profilesOf(dir, pid)[0];
        if (file === undefined) {
          out.push(`${role}: no profile written`);
          continue;
        }
        const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
        const summary = summarizeProfile(profile, role === 'worker' ? 25 : 8);
        summaries[`${run.name}/${role}`] = { file, ...summary, oursInclusive: ourInclusive(profile) };
        out.push(renderSummary(`${role} (${file})`, summary));
        if (role === 'worker') {
          out.push('  our functions by total (inclusive) time:');
          for (const f of ourInclusive(profile)) {
            out.push(`    ${f.totalPercent.toFixed(1).padStart(5)}%  ${f.name}  (${f.where})`);
          }
        }
      }
    }
  } finally {
    await Promise.all([load.stop(), dc.stop(), middle?.stop()]);
  }
  const text = out.join('\n');
  writeFileSync(join(options.outDir, 'summary.txt'), `${text}\n`);
  writeFileSync(join(options.outDir, 'summary.json'), `${JSON.stringify(summaries, null, 2)}\n`);
  return text;
}
