// Code comments cite the protocol reference by section ("§6.5", "§4.2-4.6", "§6.4-§6.10", "§5").
// A reader of the repository must be able to follow every one of them into docs/protocol.md, so a
// citation of a section that is not there (renumbered, mistyped, or from another document) fails
// here with the file and line that cites it.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = fileURLToPath(new URL('../../', import.meta.url));
const self = fileURLToPath(import.meta.url);
const protocolDoc = join(root, 'docs/protocol.md');
const scannedDirs = ['proxy/src', 'operator/src', 'bench', 'test'];
// Spelled in two parts so that this file does not cite what it forbids.
const outOfRepoReference = ['MTPROTO-PROXY', '.md'].join('');

interface Citation {
  readonly where: string;
  readonly text: string;
  readonly sections: readonly string[];
}

/** Section numbers of the `## N.` and `### N.M` headings, in document order, outside code fences. */
function sectionsOf(markdown: string): string[] {
  const sections: string[] = [];
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inFence = !inFence;
    const heading = inFence ? null : /^#{2,4} (\d+(?:\.\d+)*)\.? /.exec(line);
    if (heading) sections.push(heading[1]!);
  }
  return sections;
}

/** `§4.2`, `§ 5`, and ranges `§4.2-4.6` / `§6.4-§6.10` / `§3.1–§3.3` (both ends are checked). */
const CITATION = /\u00a7\s?(\d+(?:\.\d+)*)(?:\s?[-\u2013]\s?\u00a7?\s?(\d+(?:\.\d+)*))?/g;

function citationsIn(text: string, file: string): Citation[] {
  const found: Citation[] = [];
  text.split('\n').forEach((line, index) => {
    for (const match of line.matchAll(CITATION)) {
      const sections = match[2] === undefined ? [match[1]!] : [match[1]!, match[2]];
      found.push({ where: `${file}:${index + 1}`, text: match[0], sections });
    }
  });
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && path !== self ? [path] : [];
  });
}

function everySourceFile(): string[] {
  return scannedDirs.flatMap((dir) => sourceFiles(join(root, dir)));
}

/** Problems with one citation: sections that do not exist, or a range that runs backwards. */
function problemsWith(citation: Citation, sections: readonly string[]): string[] {
  const missing = citation.sections.filter((s) => !sections.includes(s));
  if (missing.length > 0) {
    const names = missing.map((s) => `\u00a7${s}`).join(', ');
    return [
      `${citation.where}: "${citation.text}" cites ${names}, which docs/protocol.md has no heading for`,
    ];
  }
  const [from, to] = citation.sections;
  if (to !== undefined && sections.indexOf(from!) >= sections.indexOf(to)) {
    return [`${citation.where}: ${citation.text} is a range that does not run forward in docs/protocol.md`];
  }
  return [];
}

describe('the protocol reference (docs/protocol.md)', () => {
  const doc = readFileSync(protocolDoc, 'utf8');
  const sections = sectionsOf(doc);

  it('has the numbered sections 1 to 10 the code is written against', () => {
    for (let n = 0; n <= 10; n++) expect(sections, `section ${n}`).to.include(String(n));
    expect(sections).to.include.members(['2.2', '4.10', '6.5', '6.12', '7.4']);
  });

  it('every § a comment cites is a section of docs/protocol.md', () => {
    const citations = everySourceFile().flatMap((file) =>
      citationsIn(readFileSync(file, 'utf8'), relative(root, file)),
    );
    // Guards the scan itself: the code cites the reference dozens of times.
    expect(citations.length, 'citations found').to.be.greaterThan(50);
    const problems = citations.flatMap((citation) => problemsWith(citation, sections));
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it('every § docs/protocol.md cites inside itself is one of its own sections', () => {
    const problems = citationsIn(doc, 'docs/protocol.md').flatMap((c) => problemsWith(c, sections));
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it('no source file cites the reference that lives outside the repository', () => {
    const offenders = everySourceFile().flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, index) =>
          line.includes(outOfRepoReference) ? [`${relative(root, file)}:${index + 1}`] : [],
        ),
    );
    expect(offenders, `cite docs/protocol.md instead:\n${offenders.join('\n')}`).to.deep.equal([]);
  });
});
