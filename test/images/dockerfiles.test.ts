import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { ControlPlane } from '../cluster/control-plane.js';
import { createNamespace, deleteNamespace, getClusterOrSkip } from '../cluster/shared-cluster.js';
import { type DockerfileFacts, readDockerfile } from '../support/dockerfile.js';
import { eventually, httpGet } from '../support/http-get.js';
import { Obfs2Client } from '../support/obfs2-client.js';
import { freePort } from '../support/proxy-process.js';
import { startStandinDc } from '../support/standin-dc.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const SECRET = '00112233445566778899aabbccddeeff';

/**
 * The runtime stage's steps in a temporary directory: the production tree the lock file gives
 * (here: the project's installed tree, hard-linked, with the dev dependencies pruned, so the test
 * needs no network), the compiled output, package.json. Both images copy the same things.
 */
async function reproduceRuntimeStage(): Promise<string> {
  const app = mkdtempSync(join(tmpdir(), 'mtkube-image-'));
  cpSync(join(root, 'package.json'), join(app, 'package.json'));
  cpSync(join(root, 'package-lock.json'), join(app, 'package-lock.json'));
  await run('cp', ['-al', join(root, 'node_modules'), join(app, 'node_modules')]);
  // npm rewrites its hidden lockfile in place: drop the hard link so the prune cannot write the
  // project's own node_modules/.package-lock.json (npm then reads the tree from the folders).
  rmSync(join(app, 'node_modules', '.package-lock.json'), { force: true });
  await run('npm', ['prune', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: app,
    timeout: 120_000,
  });
  expect(existsSync(join(app, 'node_modules', 'typescript')), 'dev dependencies pruned').to.equal(false);
  expect(existsSync(join(app, 'node_modules', 'prom-client')), 'runtime dependencies kept').to.equal(true);
  await run(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(root, 'tsconfig.build.json'),
      '--outDir',
      join(app, 'dist'),
    ],
    {
      cwd: root,
      timeout: 120_000,
    },
  );
  return app;
}

function commonChecks(name: string, facts: () => DockerfileFacts): void {
  it(`${name}: builds in stages and ships no build tools or dev dependencies`, () => {
    const f = facts();
    expect(f.stages.length).to.be.at.least(2);
    const runtimeRuns = f.runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    for (const r of runtimeRuns)
      expect(r, 'no installs in the runtime stage').to.not.match(/npm (ci|install)|tsc|apt-get/);
    const installs = f.stages.flatMap((s) => s.instructions).filter((i) => /npm ci/.test(i.args));
    expect(
      installs.some((i) => i.args.includes('--omit=dev')),
      'a production-only install',
    ).to.equal(true);
    expect(f.runtime.instructions.some((i) => i.keyword === 'COPY' && /node_modules/.test(i.args))).to.equal(
      true,
    );
  });

  it(`${name}: runs as a non-root user`, () => {
    const user = facts().user;
    expect(user).to.be.a('string');
    expect(user).to.not.match(/^(root|0)(:|$)/);
  });

  it(`${name}: pins every base image to an exact version`, () => {
    for (const s of facts().stages) {
      expect(s.tag, `${s.image} has a tag`).to.be.a('string');
      expect(s.tag).to.not.equal('latest');
      expect(s.tag, `${s.image}:${s.tag} names a full x.y.z version`).to.match(/^\d+\.\d+\.\d+/);
    }
  });

  it(`${name}: carries no secret and declares a health check`, () => {
    const f = facts();
    expect(f.text).to.not.match(/[0-9a-f]{32}/i);
    for (const k of Object.keys(f.env))
      expect(k, 'no secret baked into ENV').to.not.match(/SECRET$|TOKEN|PASSWORD/);
    expect(f.healthcheck).to.be.an('array').that.is.not.empty;
    expect(f.entrypoint).to.be.an('array').that.is.not.empty;
  });
}

describe('container images', () => {
  const proxy = (): DockerfileFacts => readDockerfile(join(root, 'Dockerfile.proxy'));

  commonChecks('Dockerfile.proxy', proxy);

  it('Dockerfile.proxy: keeps the official image contract (HTTP_PORT 443, /data volume, ports exposed)', () => {
    const f = proxy();
    expect(f.env.HTTP_PORT).to.equal('443');
    expect(f.env.DATA_DIR).to.equal('/data');
    expect(f.volumes).to.include('/data');
    expect(f.exposed).to.include.members([443, Number(f.env.METRICS_PORT)]);
  });

  it('.dockerignore keeps local state and build output out of the build context', async () => {
    const { readFileSync } = await import('node:fs');
    const ignore = readFileSync(join(root, '.dockerignore'), 'utf8');
    expect(ignore.split('\n')[0]?.startsWith('#') || ignore.includes('\n*\n')).to.equal(true);
    expect(ignore).to.match(/^\*$/m);
    expect(ignore).to.not.match(/^!.*node_modules/m);
  });

  describe("the proxy image's runtime stage, reproduced in a temporary directory", function () {
    this.timeout(180_000);
    let app: string;

    before(async () => {
      app = await reproduceRuntimeStage();
    });
    after(() => rmSync(app, { recursive: true, force: true }));

    it('starts a working proxy with the image environment, and its HEALTHCHECK passes', async () => {
      const f = proxy();
      const dc = await startStandinDc();
      const port = await freePort();
      const metricsPort = await freePort();
      const data = mkdtempSync(join(tmpdir(), 'mtkube-image-data-'));
      const [cmd, ...args] = f.entrypoint;
      expect(cmd).to.equal('node');
      const env = {
        PATH: process.env.PATH ?? '',
        ...f.env,
        // What `docker run -e ... -v ...` would change; 443 needs root outside a container.
        HTTP_PORT: String(port),
        DATA_DIR: data,
        METRICS_PORT: String(metricsPort),
        STATS_PORT: String(await freePort()),
        BIND: '127.0.0.1',
        EXTERNAL_IP: '127.0.0.1',
        IP_DETECT_URLS: '',
        SECRET,
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
      };
      const child = spawn(process.execPath, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      try {
        await eventually(
          async () =>
            (await httpGet(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200 ? true : undefined,
          20_000,
        );
        expect(out).to.contain('tg://proxy?server=127.0.0.1');
        const client = await Obfs2Client.connect({ port, secret: Buffer.from(SECRET, 'hex'), dc: 2 });
        client.send(Buffer.alloc(32, 3));
        expect((await client.receive()).payload.equals(Buffer.alloc(32, 3))).to.equal(true);
        client.close();
        const [hcmd, ...hargs] = f.healthcheck!;
        expect(hcmd).to.equal('node');
        await run(process.execPath, hargs, { env, timeout: 10_000 });
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        await dc.stop();
        rmSync(data, { recursive: true, force: true });
      }
    });
  });
  const operator = (): DockerfileFacts => readDockerfile(join(root, 'Dockerfile.operator'));

  commonChecks('Dockerfile.operator', operator);

  it('Dockerfile.operator: the same base as the proxy, METRICS_PORT exposed, stateless, the operator CLI', () => {
    const f = operator();
    const base = (d: DockerfileFacts) => d.stages.map((s) => `${s.image}:${s.tag}`);
    expect(new Set(base(f))).to.deep.equal(new Set(base(proxy())));
    expect(f.env.METRICS_PORT).to.equal('8080');
    expect(f.exposed).to.deep.equal([8080]);
    expect(f.volumes, 'the operator keeps no state of its own').to.deep.equal([]);
    expect(f.entrypoint).to.deep.equal(['node', 'dist/operator/src/cli.js']);
    expect(f.healthcheck!.join(' ')).to.include('process.env.METRICS_PORT').and.include('/healthz');
  });

  describe("the operator image's runtime stage, reproduced in a temporary directory", function () {
    this.timeout(180_000);
    let app: string | undefined;
    let cluster: ControlPlane | undefined;
    let ns: string | undefined;

    before(async function () {
      cluster = await getClusterOrSkip(this);
      await cluster.kubectlOk([
        'apply',
        '--server-side',
        '--force-conflicts',
        '-f',
        join(root, 'crds/mtkube.dev_mtproxies.yaml'),
      ]);
      await cluster.kubectlOk(
        ['wait', '--for=condition=Established', 'crd/mtproxies.mtkube.dev', '--timeout=30s'],
        { timeoutMs: 40_000 },
      );
      ns = await createNamespace(cluster, 'image');
      app = await reproduceRuntimeStage();
    });
    after(async () => {
      if (app) rmSync(app, { recursive: true, force: true });
      if (cluster && ns) await deleteNamespace(cluster, ns);
    });

    it('runs the operator with the image environment and a kubeconfig: ready, reconciling, HEALTHCHECK passes, SIGTERM stops it', async () => {
      const f = operator();
      const metricsPort = await freePort();
      const [cmd, ...args] = f.entrypoint;
      expect(cmd).to.equal('node');
      const env = {
        PATH: process.env.PATH ?? '',
        ...f.env,
        // What the chart's Deployment sets; in a pod the ServiceAccount replaces KUBECONFIG.
        KUBECONFIG: cluster!.kubeconfigPath,
        METRICS_PORT: String(metricsPort),
        METRICS_BIND: '127.0.0.1',
        WATCH_NAMESPACES: ns!,
        LEASE_NAMESPACE: ns!,
      };
      const child = spawn(process.execPath, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      try {
        await eventually(
          async () =>
            (await httpGet(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200 ? true : undefined,
          30_000,
        );
        await cluster!.kubectlOk(['apply', '-n', ns!, '-f', '-'], {
          input: JSON.stringify({
            apiVersion: 'mtkube.dev/v1alpha1',
            kind: 'MTProxy',
            metadata: { name: 'from-image' },
            spec: { publicAddress: { host: 'proxy.example.com' } },
          }),
        });
        await eventually(async () => {
          const r = await cluster!.kubectl(['get', 'secret', 'from-image-links', '-n', ns!, '-o', 'name']);
          return r.code === 0 ? true : undefined;
        }, 30_000);
        const [hcmd, ...hargs] = f.healthcheck!;
        expect(hcmd).to.equal('node');
        await run(process.execPath, hargs, { env, timeout: 10_000 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\noperator output:\n${out.slice(-3000)}`);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited, out.slice(-2000)).to.equal(0);
      expect(out).to.include('"message":"operator stopped"');
    });
  });
});
