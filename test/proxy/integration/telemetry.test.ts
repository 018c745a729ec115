import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { clusterBinDir, missingBinaries } from '../../cluster/paths.js';
import { eventually, httpGet, parseStats, sample } from '../../support/http-get.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { freePort, type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const BOB = 'ffeeddccbbaa99887766554433221100';
const CLIENTS = 24;
const HEADER = 64;

describe('telemetry: /stats, /metrics, probes and logs under real traffic through two workers', function () {
  this.timeout(90_000);
  let dc: StandinDc;
  let proxy: ProxyProcess;
  let payloadBytes = 0;

  before(async () => {
    dc = await startStandinDc();
    proxy = await startProxy({
      env: {
        SECRET: `${ALICE},${BOB}`,
        WORKERS: '2',
        MAX_CONNECTIONS: '500',
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
        LOG_LEVEL: 'debug',
      },
    });
    // Traffic: CLIENTS connections over both secrets, each echoing a few packets.
    for (let round = 0; round < CLIENTS / 8; round++) {
      const clients = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          Obfs2Client.connect({ port: proxy.port, secret: Buffer.from(i % 2 ? BOB : ALICE, 'hex'), dc: 2 }),
        ),
      );
      for (const c of clients) {
        for (const size of [64, 4096]) {
          c.send(randomBytes(size));
          await c.receive();
          payloadBytes += size;
        }
      }
      for (const c of clients) c.close();
    }
  });
  after(async () => {
    await proxy?.stop();
    await dc?.stop();
  });

  const metrics = async (): Promise<string> =>
    (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).body;

  it('/metrics adds up to what the DC saw, over both workers', async () => {
    // Workers report every second; wait until every connection has been counted as closed.
    const text = await eventually(async () => {
      const t = await metrics();
      return sample(t, 'mtproxy_connections_closed_total{reason="client-closed"}') === CLIENTS &&
        sample(t, 'mtproxy_connections') === 0
        ? t
        : undefined;
    }, 15_000);
    expect(dc.stats.connections).to.equal(CLIENTS);
    expect(sample(text, 'mtproxy_connections_opened_total')).to.equal(CLIENTS);
    expect(sample(text, 'mtproxy_upstream_connects_total{dc="2"}')).to.equal(CLIENTS);
    expect(sample(text, 'mtproxy_handshakes_total{transport="intermediate",result="ok"}')).to.equal(CLIENTS);
    expect(sample(text, 'mtproxy_relayed_bytes_total{direction="from_client"}')).to.equal(
      dc.stats.bytesIn - HEADER * dc.stats.connections,
    );
    expect(sample(text, 'mtproxy_relayed_bytes_total{direction="to_client"}')).to.equal(dc.stats.bytesOut);
    expect(sample(text, 'mtproxy_user_connections_total{user="secret1"}')).to.equal(CLIENTS / 2);
    expect(sample(text, 'mtproxy_user_connections_total{user="secret2"}')).to.equal(CLIENTS / 2);
    expect(sample(text, 'mtproxy_workers')).to.equal(2);
    expect(sample(text, 'mtproxy_worker_restarts_total')).to.equal(0);
    expect(sample(text, 'mtproxy_workers_resident_memory_bytes')).to.be.above(10_000_000);
    expect(text).to.contain('process_cpu_seconds_total');
    expect(text, 'no secret in any label').to.not.contain(ALICE);
    expect(payloadBytes).to.be.above(0);
  });

  it('/stats speaks the official layout with totals over all workers', async () => {
    const res = await httpGet(`http://127.0.0.1:${proxy.statsPort}/stats`);
    expect(res.status).to.equal(200);
    const stats = parseStats(res.body);
    const keys = [...stats.keys()];
    // Order and markers as in the official proxy.
    expect(keys.slice(0, 4)).to.deep.equal(['pid', 'start_time', 'current_time', 'uptime']);
    expect(keys.indexOf('>>>>>>connections>>>>>>')).to.be.below(keys.indexOf('ready_targets'));
    expect(stats.get('>>>>>>connections>>>>>>')).to.equal('start');
    expect(stats.get('<<<<<<connections<<<<<<')).to.equal('end');
    expect(keys.indexOf('ready_targets')).to.be.below(keys.indexOf('active_targets'));
    expect(keys.indexOf('stats_generate_time')).to.be.below(keys.indexOf('vmrss_bytes'));
    expect(keys.indexOf('config_filename')).to.be.below(keys.indexOf('total_ready_targets'));
    expect(keys.at(-1)).to.equal('version');
    expect(stats.get('workers')).to.equal('2');
    expect(stats.get('total_max_special_connections')).to.equal('1000');
    expect(stats.get('max_special_connections')).to.equal('1000');
    expect(stats.get('total_special_connections')).to.equal('0');
    expect(stats.get('inbound_connections_accepted')).to.equal(String(CLIENTS));
    expect(stats.get('outbound_connections_created')).to.equal(String(CLIENTS));
    expect(stats.get('total_accept_connections_failed')).to.equal('0 0 0 0 0');
    expect(stats.get('total_dh_rounds')).to.equal('0 0 0');
    expect(stats.get('proxy_tag_set')).to.equal('0');
    expect(stats.get('version')).to.match(/^mtkube-\d+\.\d+\.\d+ node-24\./);
    expect(Number(stats.get('http_queries'))).to.be.at.least(1);
    expect(Number(stats.get('uptime'))).to.be.at.least(0);
  });

  it('/stats answers 404 to clients outside the allow-list and 501 to other methods', async () => {
    const other = await startProxy({
      env: { SECRET: ALICE, STATS_ALLOW: '127.0.0.2/32', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
    try {
      const url = `http://127.0.0.1:${other.statsPort}/stats`;
      expect((await httpGet(url, { localAddress: '127.0.0.1' })).status).to.equal(404);
      expect((await httpGet(url, { localAddress: '127.0.0.2' })).status).to.equal(200);
      expect(
        (await httpGet(`http://127.0.0.1:${other.statsPort}/other`, { localAddress: '127.0.0.2' })).status,
      ).to.equal(404);
      expect((await httpGet(url, { localAddress: '127.0.0.2', method: 'POST' })).status).to.equal(501);
    } finally {
      await other.stop();
    }
  });

  it('/healthz and /readyz answer for Kubernetes probes', async () => {
    expect((await httpGet(`http://127.0.0.1:${proxy.metricsPort}/healthz`)).status).to.equal(200);
    const ready = await httpGet(`http://127.0.0.1:${proxy.metricsPort}/readyz`);
    expect(ready.status).to.equal(200);
  });

  it('logs are JSON lines when not on a terminal, one per lifecycle event, and never carry a secret', () => {
    const lines = proxy
      .output()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('[*]'));
    expect(lines.length).to.be.above(2);
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: string; message: string; timestamp: string };
      expect(entry.level).to.be.a('string');
      expect(entry.timestamp).to.be.a('string');
      expect(line).to.not.contain(ALICE);
      expect(line).to.not.contain(BOB);
    }
    // The banner is the one place secrets appear, because the user asked for the links.
    const banner = proxy
      .output()
      .split('\n')
      .filter((l) => l.startsWith('[*]'));
    expect(banner.join('\n')).to.contain(ALICE);
  });

  it('BANNER=off prints no secret at all', async () => {
    const quiet = await startProxy({
      env: { SECRET: ALICE, BANNER: 'off', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
    await quiet.stop();
    expect(quiet.output()).to.not.contain(ALICE);
    expect(quiet.output()).to.contain('drain finished');
  });

  describe('with the real Prometheus tools', () => {
    let bin = '';
    before(async function () {
      bin = await clusterBinDir();
      const missing = await missingBinaries(bin, ['prometheus', 'promtool']);
      if (missing.length > 0) {
        console.warn(`skipping: ${missing.join(', ')} not built (run bash test/cluster/build.sh)`);
        this.skip();
      }
    });

    it('promtool check metrics finds nothing wrong with /metrics', async () => {
      const text = await metrics();
      const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(join(bin, 'promtool'), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.stderr.on('data', (d) => {
          out += d;
        });
        child.on('close', (code) => resolve({ code, out }));
        child.stdin.end(text);
      });
      const problems = result.out.split('\n').filter((l) => l.trim() !== '');
      expect(problems, result.out).to.deep.equal([]);
      expect(result.code).to.equal(0);
    });

    it('a real Prometheus scrapes us and sees the right values', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mtkube-prom-'));
      const webPort = await freePort();
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global:',
          '  scrape_interval: 1s',
          'scrape_configs:',
          '  - job_name: mtproxy',
          '    static_configs:',
          `      - targets: ['127.0.0.1:${proxy.metricsPort}']`,
          '',
        ].join('\n'),
      );
      const prom = spawn(
        join(bin, 'prometheus'),
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${webPort}`,
          '--log.level=warn',
        ],
        { stdio: 'ignore' },
      );
      try {
        const query = async (q: string): Promise<number | undefined> => {
          const res = await httpGet(
            `http://127.0.0.1:${webPort}/api/v1/query?query=${encodeURIComponent(q)}`,
          );
          if (res.status !== 200) return undefined;
          const body = JSON.parse(res.body) as { data: { result: { value: [number, string] }[] } };
          const v = body.data.result[0]?.value[1];
          return v === undefined ? undefined : Number(v);
        };
        const opened = await eventually(() => query('mtproxy_connections_opened_total'), 30_000, 500);
        expect(opened).to.equal(CLIENTS);
        expect(await query('sum(mtproxy_user_connections_total)')).to.equal(CLIENTS);
        expect(await query('up{job="mtproxy"}')).to.equal(1);
      } finally {
        prom.kill('SIGTERM');
        await new Promise((r) => prom.once('exit', r));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
