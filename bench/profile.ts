// `npm run bench -- --profile`: runs our proxy under bulk, small-packet and handshake load with
// V8's CPU profiler on in every process of its tree (NODE_OPTIONS reaches cluster workers too),
// then summarises the worker's and the primary's profiles. Profiling slows the proxy down, so
// these runs are separate from the measured ones and their figures are only a guide.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientMode } from './client-conn.js';
import { measureWindow, newResult } from './measure.js';
import type { LoadSpec } from './messages.js';
import { canPin } from './processes.js';
import { type CpuProfile, ourInclusive, renderSummary, summarizeProfile } from './profile-summary.js';
import { buildProxy, LoadProcess, startEchoDc, startMtkube } from './systems.js';

export interface ProfileOptions {
  readonly outDir: string;
  readonly quick: boolean;
  readonly fromSource: boolean;
  readonly proxyCli: string | undefined;
  /** Profile runs whose name starts with one of these (e.g. "bulk"); empty runs all. */
  readonly only: readonly string[];
  readonly log: (line: string) => void;
}

interface ProfileRun {
  readonly name: string;
  readonly fakeTls: boolean;
  readonly spec: (port: number, secretHex: string, domain: string) => LoadSpec;
}

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
  const dc = await startEchoDc(cpus.load);
  const load = await LoadProcess.start(cpus.load);
  const common = (port: number, secretHex: string, domain: string, mode: ClientMode) => ({
    port,
    mode,
    secretHex,
    domain,
    timeoutMs: 10_000,
  });
  const stream =
    (mode: ClientMode, packetSize: number, windowBytes: number) =>
    (port: number, secretHex: string, domain: string): LoadSpec => ({
      kind: 'stream',
      ...common(port, secretHex, domain, mode),
      connections: 4,
      packetSize,
      windowBytes,
      warmupMs,
      durationMs,
    });
  const handshakes =
    (mode: ClientMode) =>
    (port: number, secretHex: string, domain: string): LoadSpec => ({
      kind: 'handshakes',
      ...common(port, secretHex, domain, mode),
      concurrency: 8,
      warmupMs,
      durationMs,
    });
  const runs: ProfileRun[] = [
    { name: 'bulk-16k-plain', fakeTls: false, spec: stream('plain', 16_384, 262_144) },
    { name: 'small-256-plain', fakeTls: false, spec: stream('plain', 256, 16_384) },
    { name: 'handshakes-plain', fakeTls: false, spec: handshakes('plain') },
    { name: 'handshakes-dd', fakeTls: false, spec: handshakes('dd') },
    { name: 'handshakes-ee', fakeTls: true, spec: handshakes('ee') },
  ];
  const out: string[] = [];
  const summaries: Record<string, unknown> = {};
  mkdirSync(options.outDir, { recursive: true });
  try {
    for (const run of runs) {
      if (options.only.length > 0 && !options.only.some((p) => run.name.startsWith(p))) continue;
      options.log(`profiling ${run.name}`);
      const dir = join(options.outDir, run.name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      let sut: Awaited<ReturnType<typeof startMtkube>>;
      try {
        sut = await startMtkube({
          build,
          dcPort: dc.port,
          workers: 1,
          cpus: cpus.proxy,
          fakeTls: run.fakeTls,
          profileDir: dir,
        });
      } catch (err) {
        out.push(`${run.name}: proxy did not start (${(err as Error).message.split('\n')[0]})`);
        continue;
      }
      const [primaryPid, workerPid] = sut.pids();
      const result = newResult({
        id: run.name,
        system: 'mtkube',
        kind: 'bulk',
        mode: 'plain',
        workers: 1,
        pinned: true,
      });
      try {
        await measureWindow(
          sut,
          [load],
          [run.spec(sut.port, sut.secret.toString('hex'), sut.domain)],
          result,
        );
      } catch (err) {
        result.status = 'failed';
        result.errors.push((err as Error).message);
      }
      await sut.stop();
      if (result.status !== 'ok') {
        out.push(`${run.name}: load failed (${result.errors.join('; ').slice(0, 200)})`);
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
    await Promise.all([load.stop(), dc.stop()]);
  }
  const text = out.join('\n');
  writeFileSync(join(options.outDir, 'summary.txt'), `${text}\n`);
  writeFileSync(join(options.outDir, 'summary.json'), `${JSON.stringify(summaries, null, 2)}\n`);
  return text;
}
