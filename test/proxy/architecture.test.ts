// The shape of proxy/src, as the README's Layout and Architecture sections describe it: features
// import the session core and the pure codecs, never the reverse, and nothing imports in a circle.
// Imports are read with a regular expression (our sources use only `import … from '…'`,
// `export … from '…'` and `import('…')`), which is all this check needs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const SRC = 'proxy/src';

interface SourceFile {
  /** Path from the repository root, with forward slashes. */
  readonly path: string;
  /** Relative imports, resolved to repository paths of .ts files. */
  readonly local: readonly string[];
  /** Package and node: imports, as written. */
  readonly packages: readonly string[];
  /** Package and node: imports that bring in values, not only types, minus node:net's address checks. */
  readonly runtimePackages: readonly string[];
}

function sources(): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(repo, dir)).sort()) {
      const path = posix.join(dir, name);
      if (statSync(join(repo, path)).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) {
        const text = readFileSync(join(repo, path), 'utf8');
        const specs = [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!);
        out.push({
          path,
          local: specs
            .filter((s) => s.startsWith('.'))
            .map((s) => posix.normalize(posix.join(posix.dirname(path), s)).replace(/\.js$/, '.ts')),
          packages: specs.filter((s) => !s.startsWith('.')),
          runtimePackages: [...text.matchAll(/^import\s+(?!type\s)([^;]*?)\s+from\s+'([^'.][^']*)'/gm)]
            .filter(
              (m) =>
                !(
                  m[2] === 'node:net' &&
                  /^\{\s*(isIP|isIPv4|isIPv6)(\s*,\s*(isIP|isIPv4|isIPv6))*\s*\}$/.test(m[1]!)
                ),
            )
            .map((m) => m[2]!),
        });
      }
    }
  };
  walk(SRC);
  return out;
}

/** The top folder of a source under proxy/src ('session', 'middle', …; 'cli.ts' for a top file). */
function folderOf(path: string): string {
  return path.slice(SRC.length + 1).split('/')[0]!;
}

/** Every cycle of the graph (strongly connected components with more than one node, or a self edge). */
function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

describe('the proxy source, as a newcomer reads it', () => {
  const files = sources();

  it('finds every import it resolves (the check reads what it claims to)', () => {
    const known = new Set(files.map((f) => f.path));
    const missing = files.flatMap((f) =>
      f.local.filter((t) => !known.has(t)).map((t) => `${f.path} -> ${t}`),
    );
    expect(missing).to.deep.equal([]);
    expect(files.length).to.be.greaterThan(50);
  });

  it('has no import cycle between files', () => {
    const graph = new Map(files.map((f) => [f.path, new Set(f.local)]));
    expect(cycles(graph)).to.deep.equal([]);
  });

  it('has no import cycle between feature folders', () => {
    const graph = new Map<string, Set<string>>();
    for (const f of files) {
      const from = folderOf(f.path);
      for (const t of f.local) {
        const to = folderOf(t);
        if (to === from) continue;
        if (!graph.has(from)) graph.set(from, new Set());
        graph.get(from)!.add(to);
      }
    }
    expect(cycles(graph)).to.deep.equal([]);
  });

  it('keeps the session core free of features: it imports only its own ports, codecs and node:', () => {
    const allowed = new Set(['session', 'protocol', 'fake-tls']);
    const offending = files
      .filter((f) => folderOf(f.path) === 'session')
      .flatMap((f) => [
        ...f.local.filter((t) => !allowed.has(folderOf(t))).map((t) => `${f.path} -> ${t}`),
        ...f.packages.filter((p) => !p.startsWith('node:')).map((p) => `${f.path} -> ${p}`),
      ]);
    expect(offending).to.deep.equal([]);
  });

  it('keeps the process core free of features: features register their IPC messages on it, not the reverse', () => {
    const allowed = new Set(['process', 'log', 'timers']);
    const offending = files
      .filter((f) => folderOf(f.path) === 'process')
      .flatMap((f) => f.local.filter((t) => !allowed.has(folderOf(t))).map((t) => `${f.path} -> ${t}`));
    expect(offending).to.deep.equal([]);
  });

  it('keeps the plumbing at the bottom: log/, timers/ and protocol/ import no other folder', () => {
    const offending = files
      .filter((f) => ['log', 'timers', 'protocol'].includes(folderOf(f.path)))
      .flatMap((f) =>
        f.local.filter((t) => folderOf(t) !== folderOf(f.path)).map((t) => `${f.path} -> ${t}`),
      );
    expect(offending).to.deep.equal([]);
  });

  it('keeps the codecs pure: protocol/ and the fake-TLS code the session uses open no socket, file or process', () => {
    const io = /^node:(net|tls|fs|fs\/promises|cluster|child_process|dgram|http|https|dns|worker_threads)$/;
    const sessionFiles = files.filter((f) => folderOf(f.path) === 'session');
    const codecs = new Set([
      ...files.filter((f) => folderOf(f.path) === 'protocol').map((f) => f.path),
      ...sessionFiles.flatMap((f) => f.local.filter((t) => folderOf(t) === 'fake-tls')),
    ]);
    // What a codec imports is a codec too.
    const byPath = new Map(files.map((f) => [f.path, f]));
    const queue = [...codecs];
    while (queue.length > 0) {
      for (const t of byPath.get(queue.pop()!)?.local ?? []) {
        if (codecs.has(t)) continue;
        codecs.add(t);
        queue.push(t);
      }
    }
    const impure = [...codecs].sort().flatMap((path) => {
      const f = byPath.get(path)!;
      return [
        ...f.runtimePackages.filter((p) => io.test(p)).map((p) => `${path} -> ${p}`),
        ...f.local
          .filter((t) => !['protocol', 'fake-tls'].includes(folderOf(t)))
          .map((t) => `${path} -> ${t}`),
      ];
    });
    expect(impure).to.deep.equal([]);
  });
});

describe('the shipped source, as a newcomer reads it', () => {
  /** Exports kept although only tests read them, and why. */
  const KEPT: Record<string, string> = {
    TL_HTTP_QUERY_INFO:
      'a constant of the middle-end protocol, pinned next to the others; only the stand-in middle-end sends it',
    PERMISSIVE_POLICY: 'the operator policy for a single-tenant cluster, documented as such',
  };

  function tsFiles(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(join(repo, d)).sort()) {
        if (name === 'node_modules' || name.startsWith('.')) continue;
        const path = posix.join(d, name);
        if (statSync(join(repo, path)).isDirectory()) walk(path);
        else if (path.endsWith('.ts')) out.push(path);
      }
    };
    walk(dir);
    return out;
  }

  it('holds only what the proxy and the operator run: no export is there for the tests alone', () => {
    const shipped = [...tsFiles('proxy/src'), ...tsFiles('operator/src')];
    const production = [...shipped, ...tsFiles('scripts')];
    const testing = [...tsFiles('test'), ...tsFiles('bench')];
    const text = new Map([...production, ...testing].map((f) => [f, readFileSync(join(repo, f), 'utf8')]));
    const testOnly: string[] = [];
    let exportsSeen = 0;
    for (const file of shipped) {
      const own = text.get(file)!;
      for (const m of own.matchAll(
        /^export (?:async )?(?:function\*? |const |let |class )([A-Za-z_$][\w$]*)/gm,
      )) {
        exportsSeen++;
        const name = m[1]!;
        const word = new RegExp(`\\b${name.replace(/\$/g, '\\$')}\\b`);
        const usedInOwnFile = (own.match(new RegExp(word.source, 'g')) ?? []).length > 1;
        if (usedInOwnFile || production.some((f) => f !== file && word.test(text.get(f)!))) continue;
        if (name in KEPT) continue;
        if (testing.some((f) => word.test(text.get(f)!))) testOnly.push(`${file}: ${name}`);
      }
    }
    expect(exportsSeen).to.be.greaterThan(200);
    expect(testOnly, 'move these to test/support (the other side of a protocol) or bench/').to.deep.equal([]);
  });
});
