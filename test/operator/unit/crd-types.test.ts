// The CRD is the one source of the MTProxy's shape: the TypeScript generated from it is current,
// the chart ships the same CRD, and a hand-written type that drifts from it fails the typecheck.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { renderCrdTypes } from '../../../operator/src/api/crd-types.js';

const root = new URL('../../../', import.meta.url);
const read = (p: string) => readFile(new URL(p, root), 'utf8');

describe('operator: one source for the CRD and the TypeScript types', () => {
  it('operator/src/api/crd.generated.ts is what `npm run docs` makes from crds/', async () => {
    const crd = await read('crds/mtkube.dev_mtproxies.yaml');
    expect(await read('operator/src/api/crd.generated.ts'), 'run `npm run docs`').to.equal(
      renderCrdTypes(crd),
    );
  });

  it('the chart ships the same CRD as crds/', async () => {
    expect(await read('charts/mtkube/crds/mtkube.dev_mtproxies.yaml')).to.equal(
      await read('crds/mtkube.dev_mtproxies.yaml'),
    );
  });

  it('a field added to the CRD but not to api/types.ts fails the typecheck, naming the path', async function () {
    this.timeout(120_000);
    const dir = await mkdtemp(join(tmpdir(), 'mtkube-crd-'));
    try {
      const crd = (await read('crds/mtkube.dev_mtproxies.yaml')).replace(
        '                replicas:\n',
        '                notInTypes:\n                  type: object\n                  properties:\n                    url:\n                      type: string\n                replicas:\n',
      );
      const generated = join(dir, 'crd.generated.ts');
      await writeFile(generated, renderCrdTypes(crd));
      // The contract module, pointed at the drifted generated types.
      const contract = (await read('operator/src/api/crd-contract.ts'))
        .replace("'./crd.generated.js'", JSON.stringify(generated.replace(/\.ts$/, '.js')))
        .replace("'./types.js'", JSON.stringify(new URL('operator/src/api/types.js', root).pathname));
      await writeFile(join(dir, 'contract.ts'), contract);
      const tsc = new URL('node_modules/typescript/bin/tsc', root).pathname;
      const args = [
        tsc,
        '--ignoreConfig',
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
      ];
      const run = promisify(execFile)(process.execPath, [
        ...args,
        '--skipLibCheck',
        join(dir, 'contract.ts'),
      ]);
      const err = (await run.then(
        () => undefined,
        (e: { stdout: string }) => e,
      )) as { stdout: string } | undefined;
      expect(err, 'the typecheck failed').to.not.equal(undefined);
      expect(err!.stdout).to.include('notInTypes');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
