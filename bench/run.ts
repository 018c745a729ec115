// `npm run bench`: measures our proxy against a plain relay and the crypto limit on 127.0.0.1, and
// prints a table (stdout) and writes JSON (bench/results/latest.json). See bench/suite.ts for the
// plan and bench/measure.ts for what each figure means.
//
//   npm run bench                 full run, a few minutes
//   npm run bench -- --quick      smoke run, under a minute: every scenario runs and verifies bytes
//   npm run bench -- --json       print the JSON instead of the table
//   npm run bench -- --out FILE   write the JSON elsewhere
//   npm run bench -- --source     run the proxy's TypeScript through tsx instead of compiling it
//   npm run bench -- --cli FILE   run this proxy build (e.g. dist/proxy/src/cli.js) instead
//   npm run bench -- --only P,Q   only the scenarios whose id starts with P or Q (e.g. mtkube/bulk)
//   npm run bench -- --profile    CPU profiles of the proxy under bulk and handshake load instead
//   npm run bench -- --attack     the proxy under a garbage-handshake flood and a middle-mode
//                                 non-reader flood (bench/attack.ts); with --quick, a short run
//   npm run bench -- --peer 'NAME:KIND=CMD'  also measure a peer proxy, KIND direct, middle or tls
//                                 (repeatable; or BENCH_PEERS, one per line; see bench/peers.ts)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { measureTrialCost, renderAttackTable, renderTrialTable, runAttack } from './attack.js';
import { collectPeers } from './peers.js';
import { killAllLaunched, processAccount } from './processes.js';
import { runProfiles } from './profile.js';
import { type BenchJson, machineInfo, renderTable, TARGETS } from './report.js';
import { runSuite } from './suite.js';
import { ROOT } from './systems.js';

interface Args {
  readonly quick: boolean;
  readonly json: boolean;
  readonly source: boolean;
  readonly profile: boolean;
  readonly attack: boolean;
  readonly out: string | undefined;
  readonly cli: string | undefined;
  readonly only: readonly string[];
  readonly peers: readonly string[];
}

function parseArgs(argv: readonly string[]): Args {
  const args = {
    quick: false,
    json: false,
    source: false,
    profile: false,
    attack: false,
    out: undefined as string | undefined,
    cli: undefined as string | undefined,
    only: [] as string[],
    peers: [] as string[],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--json') args.json = true;
    else if (a === '--source') args.source = true;
    else if (a === '--profile') args.profile = true;
    else if (a === '--attack') args.attack = true;
    else if (a === '--out' && argv[i + 1] !== undefined) args.out = argv[++i];
    else if (a === '--cli' && argv[i + 1] !== undefined) args.cli = argv[++i];
    else if (a === '--peer' && argv[i + 1] !== undefined) args.peers.push(argv[++i]!);
    else if (a === '--only' && argv[i + 1] !== undefined) args.only.push(...argv[++i]!.split(','));
    else throw new Error(`unknown argument ${a}; see the top of bench/run.ts`);
  }
  return args;
}

/** Hard bound on the whole run: whatever happens, everything started is killed by then. */
const DEADLINE_MS = { quick: 110_000, full: 12 * 60_000, perPeer: { quick: 30_000, full: 4 * 60_000 } };

function guard(deadlineMs: number): void {
  const bail = (why: string, code: number): void => {
    process.stderr.write(`bench: ${why}; stopping everything it started\n`);
    killAllLaunched();
    process.exit(code);
  };
  setTimeout(() => bail(`still running after ${deadlineMs / 1000} s`, 3), deadlineMs).unref();
  process.once('SIGINT', () => bail('interrupted', 130));
  process.once('SIGTERM', () => bail('terminated', 143));
  process.once('exit', () => killAllLaunched());
}

/** Results kept in the repository are formatted as `npm run lint` wants them. */
function formatLikeTheRepo(file: string): void {
  const biome = join(ROOT, 'node_modules/@biomejs/biome/bin/biome');
  if (!file.startsWith(ROOT) || !existsSync(biome)) return;
  spawnSync(process.execPath, [biome, 'format', '--write', file], { cwd: ROOT, stdio: 'ignore' });
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const peers = collectPeers(args.peers, process.env);
  const perPeer = args.quick ? DEADLINE_MS.perPeer.quick : DEADLINE_MS.perPeer.full;
  guard((args.quick ? DEADLINE_MS.quick : DEADLINE_MS.full) + peers.length * perPeer);
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  if (args.profile) {
    const outDir = join(ROOT, 'bench', 'results', 'profiles');
    const summary = await runProfiles({
      outDir,
      quick: args.quick,
      fromSource: args.source,
      proxyCli: args.cli,
      only: args.only,
      log,
    });
    process.stdout.write(`${summary}\n`);
    return 0;
  }
  if (args.attack) {
    const trial = measureTrialCost(args.quick ? 10 : 50);
    const rows = await runAttack({ quick: args.quick, fromSource: args.source, proxyCli: args.cli, log });
    const out = args.out ?? join(ROOT, 'bench', 'results', args.quick ? 'attack-quick.json' : 'attack.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(
      out,
      `${JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), trial, rows }, null, 2)}\n`,
    );
    formatLikeTheRepo(out);
    process.stdout.write(
      `${args.json ? JSON.stringify({ trial, rows }, null, 2) : `${renderTrialTable(trial)}\n\n${renderAttackTable(rows)}`}\n`,
    );
    log(`JSON: ${out}`);
    return 0;
  }
  const began = Date.now();
  const report = await runSuite({
    quick: args.quick,
    fromSource: args.source,
    proxyCli: args.cli,
    only: args.only,
    peers,
    log,
  });
  const json: BenchJson = {
    schema: 1,
    date: new Date(began).toISOString(),
    durationSeconds: (Date.now() - began) / 1000,
    machine: machineInfo(),
    targets: TARGETS,
    ...report,
    processes: processAccount(),
  };
  const out = args.out ?? join(ROOT, 'bench', 'results', args.quick ? 'quick.json' : 'latest.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  formatLikeTheRepo(out);
  process.stdout.write(args.json ? `${JSON.stringify(json, null, 2)}\n` : `${renderTable(json)}\n`);
  log(`JSON: ${out}`);
  return json.scenarios.some((s) => s.status === 'failed') ? 1 : 0;
}

main().then(
  (code) => {
    killAllLaunched();
    process.exit(code);
  },
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    killAllLaunched();
    process.exit(2);
  },
);
