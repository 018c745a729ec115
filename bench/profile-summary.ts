// Reads a V8 .cpuprofile (from node --cpu-prof) and says where the time went: self time and total
// (inclusive) time per function, and how much was our code, Node's, native code and GC.
//
//   npx tsx bench/profile-summary.ts FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface FunctionCost {
  readonly name: string;
  /** Where: our file (relative), node:internal, or (native). */
  readonly where: string;
  readonly selfMs: number;
  readonly selfPercent: number;
  readonly totalMs: number;
  readonly totalPercent: number;
}

export interface ProfileSummary {
  /** Sampled time not idle, in ms. */
  readonly busyMs: number;
  readonly categories: Record<'ours' | 'node' | 'dependencies' | 'gc' | 'native and other', number>;
  readonly top: readonly FunctionCost[];
}

function where(url: string, line: number): string {
  if (url === '') return '(native)';
  const ours = /\/((?:proxy|bench)\/src\/.*|bench\/[^/]+)$/.exec(url.replace(/\/bench\/\.build\//, '/'));
  if (ours && !url.includes('node_modules')) return `${ours[1]}:${line + 1}`;
  if (url.startsWith('node:')) return url;
  const dep = /node_modules\/(.*)$/.exec(url);
  return dep ? `dep ${dep[1]}:${line + 1}` : `${url}:${line + 1}`;
}

function category(node: ProfileNode): keyof ProfileSummary['categories'] {
  const { url, functionName } = node.callFrame;
  if (functionName === '(garbage collector)') return 'gc';
  if (url.includes('node_modules')) return 'dependencies';
  if (url.startsWith('node:')) return 'node';
  if (/\/(proxy\/src|bench)\//.test(url)) return 'ours';
  return 'native and other';
}

export function summarizeProfile(profile: CpuProfile, topN = 20): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = (n: ProfileNode): string =>
    `${n.callFrame.functionName || '(anonymous)'}\u0000${where(n.callFrame.url, n.callFrame.lineNumber)}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const categories: ProfileSummary['categories'] = {
    ours: 0,
    node: 0,
    dependencies: 0,
    gc: 0,
    'native and other': 0,
  };
  let busyUs = 0;
  // timeDeltas[i + 1] is the time until the next sample: the time sample i stands for.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    busyUs += us;
    const key = keyOf(node);
    self.set(key, (self.get(key) ?? 0) + us);
    categories[category(node)] += us / 1000;
    const seen = new Set<string>();
    for (let at: number | undefined = node.id; at !== undefined; at = parent.get(at)) {
      const k = keyOf(byId.get(at)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([key, us]) => {
      const [name, at] = key.split('\u0000') as [string, string];
      const inclusive = total.get(key) ?? us;
      return {
        name,
        where: at,
        selfMs: us / 1000,
        selfPercent: (100 * us) / busyUs,
        totalMs: inclusive / 1000,
        totalPercent: (100 * inclusive) / busyUs,
      };
    });
  return { busyMs: busyUs / 1000, categories, top };
}

/** Total (inclusive) time of our own functions, the biggest first: which of our paths cost most. */
export function ourInclusive(profile: CpuProfile, topN = 12): FunctionCost[] {
  const s = summarizeProfile(profile, Number.MAX_SAFE_INTEGER);
  return s.top
    .filter((f) => /^(proxy|bench)\//.test(f.where))
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, topN);
}

export function renderSummary(title: string, s: ProfileSummary): string {
  const lines = [`${title}: ${s.busyMs.toFixed(0)} ms busy`];
  const cats = Object.entries(s.categories)
    .map(([k, ms]) => `${k} ${((100 * ms) / s.busyMs).toFixed(1)}%`)
    .join(', ');
  lines.push(`  by origin (self time): ${cats}`);
  lines.push('   self%  total%  function  (where)');
  for (const f of s.top) {
    lines.push(
      `  ${f.selfPercent.toFixed(1).padStart(6)}  ${f.totalPercent.toFixed(1).padStart(6)}  ${f.name}  (${f.where})`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: tsx bench/profile-summary.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${renderSummary(file, summarizeProfile(profile, Number(process.argv[3] ?? 25)))}\n`);
}
