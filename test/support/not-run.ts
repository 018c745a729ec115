// Tests that could not run on this machine, and why. A suite that cannot run (no root, no runc,
// images not built) records itself here and skips; the root hook prints every entry in a banner
// at the end of the run, so a green run that left something out says so loudly. Under CI
// (CI=true) such suites fail instead of skipping.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { imageArchiveDir, realNodePrerequisiteProblem } from '../cluster/node/real-node.js';

export const notRun: { suite: string; reason: string }[] = [];

export function reportNotRun(suite: string, reason: string): void {
  notRun.push({ suite, reason });
  console.warn(`\n  NOT RUN: ${suite}: ${reason}\n`);
}

/** Why the real-node tests cannot run here, or undefined when they can. */
export function realNodeProblem(): string | undefined {
  const problem = realNodePrerequisiteProblem();
  if (problem) return problem;
  for (const name of ['proxy.tar', 'operator.tar']) {
    if (!existsSync(join(imageArchiveDir(), name))) {
      return `${join(imageArchiveDir(), name)} is missing: run \`npm run images\``;
    }
  }
  return undefined;
}

export function notRunBanner(): string {
  if (notRun.length === 0) return '';
  const lines = notRun.map((n) => `!!   ${n.suite}: ${n.reason}`);
  const bar = '!'.repeat(78);
  return `\n${bar}\n!! ${notRun.length} suite(s) could NOT run on this machine and were skipped:\n${lines.join('\n')}\n${bar}\n`;
}
