import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startProxy } from '../../support/proxy-process.js';

const secretLine = /\[\*\] {3}Secret 1: ([0-9a-f]{32})/;

describe('starting the proxy with no configuration', function () {
  this.timeout(60_000);
  let dataDir: string;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'mtkube-data-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('generates a secret, saves it, prints links, and reuses it after a restart', async () => {
    const first = await startProxy({ dataDir });
    const out = first.output();
    const secret = secretLine.exec(out)?.[1];
    expect(secret, out).to.be.a('string');
    expect(out).to.contain(`tg://proxy?server=127.0.0.1&port=${first.port}&secret=dd${secret}`);
    expect(out).to.contain(`https://t.me/proxy?server=127.0.0.1&port=${first.port}&secret=${secret}`);
    expect(out).to.contain('Tag: no tag');
    expect(out).to.contain('External IP: 127.0.0.1');
    expect(out).to.contain('fix the links');
    expect(readFileSync(join(dataDir, 'secret'), 'utf8').trim()).to.equal(secret);
    expect(statSync(join(dataDir, 'secret')).mode & 0o077, 'secret file is private').to.equal(0);
    expect(await first.stop()).to.equal(0);

    const second = await startProxy({ dataDir });
    expect(secretLine.exec(second.output())?.[1]).to.equal(secret);
    expect(second.output()).to.contain('secrets loaded');
    await second.stop();
  });

  it('generates SECRET_COUNT secrets', async () => {
    const proxy = await startProxy({ dataDir, env: { SECRET_COUNT: '3' } });
    expect(proxy.output()).to.match(/Secret 3: [0-9a-f]{32}/);
    expect(readFileSync(join(dataDir, 'secret'), 'utf8').trim().split(',')).to.have.length(3);
    await proxy.stop();
  });

  it('uses SECRET as given, lower-cased, and shows the tag', async () => {
    const proxy = await startProxy({
      dataDir,
      env: { SECRET: '00112233445566778899AABBCCDDEEFF', TAG: 'A1B2C3D4E5F60718293A4B5C6D7E8F90' },
    });
    expect(proxy.output()).to.contain('Secret 1: 00112233445566778899aabbccddeeff');
    expect(proxy.output()).to.contain('Tag: a1b2c3d4e5f60718293a4b5c6d7e8f90');
    await proxy.stop();
  });

  it('refuses to start with an invalid SECRET and says which variable and why', async () => {
    const proxy = await startProxy({ dataDir, env: { SECRET: 'nothex' }, waitReady: false });
    expect(await proxy.exited).to.equal(2);
    expect(proxy.output()).to.match(/configuration error: SECRET: entry 1/);
    expect(proxy.output()).to.not.contain('proxy listening');
  });

  it('explains a port that is already taken instead of crashing', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const third = await startProxy({ dataDir, port, waitReady: false });
    expect(await third.exited).to.equal(1);
    expect(third.output()).to.contain(`PORT: port ${port} is already in use`);
    blocker.close();
  });

  it('does not hang when the external IP cannot be detected', async () => {
    // A detection service that accepts and never answers: start-up must go on after its time limit.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}/`;
    const started = Date.now();
    const proxy = await startProxy({
      dataDir,
      env: { EXTERNAL_IP: '', IP_DETECT_URLS: url, INTERNAL_IP: '10.0.0.7' },
    });
    expect(Date.now() - started).to.be.below(15_000);
    expect(proxy.output()).to.contain('External IP: 10.0.0.7');
    await proxy.stop();
    silent.closeAllConnections();
    silent.close();
  });

  it('prints --help with every option and exits 0', async () => {
    const proxy = await startProxy({ dataDir, args: ['--help'], waitReady: false });
    expect(await proxy.exited).to.equal(0);
    expect(proxy.output()).to.contain('--secret-count');
    expect(proxy.output()).to.contain('[PORT, HTTP_PORT]');
  });
});
