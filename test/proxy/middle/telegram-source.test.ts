// Telegram's proxy secret and config for middle mode, served to the proxy from local files and
// from an HTTP server on 127.0.0.1 the way core.telegram.org serves them.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { builtinProxyConfig } from '../../../proxy/src/middle/codec/builtin-config.js';
import { configFromWire, configToWire } from '../../../proxy/src/middle/config-messages.js';
import { readSource, TelegramFileError } from '../../../proxy/src/middle/telegram-files.js';
import {
  CACHE_FILES,
  type LoadResult,
  MiddleModeUnavailableError,
  type TelegramConfigOptions,
  type TelegramConfigSnapshot,
  TelegramConfigSource,
  type TelegramFile,
} from '../../../proxy/src/middle/telegram-source.js';
import type { Scheduler } from '../../../proxy/src/timers/scheduler.js';

const CONFIG_A = 'default 2;\nproxy_for 2 127.0.0.1:7001;\nproxy_for 4 127.0.0.1:7004;\n';
const CONFIG_B = 'default 2;\nproxy_for 2 127.0.0.1:8002;\n';

/** What the test's "core.telegram.org" answers, changeable between requests. */
interface Route {
  status: number;
  body: Buffer | string;
  /** Never answer (to hit the proxy's deadline). */
  hang?: boolean;
  /** Cut the connection instead of answering. */
  reset?: boolean;
}

class FakeTelegram {
  readonly routes = new Map<string, Route>();
  readonly hits: string[] = [];

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeTelegram> {
    const server = createServer();
    const fake = new FakeTelegram(server);
    server.on('request', (req, res) => {
      fake.hits.push(req.url ?? '');
      const route = fake.routes.get(req.url ?? '');
      if (route?.hang) return;
      if (route?.reset) {
        req.socket.destroy();
        return;
      }
      res.writeHead(route?.status ?? 404);
      res.end(route?.body ?? 'not found');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return fake;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  serve(path: string, body: Buffer | string, status = 200): void {
    this.routes.set(path, { status, body });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A timer the test fires by hand: refreshes happen exactly when the test says. */
class ManualScheduler implements Scheduler {
  pending: { callback: () => void; ms: number } | undefined;
  setTimeout(callback: () => void, ms: number): unknown {
    this.pending = { callback, ms };
    return this.pending;
  }
  clearTimeout(handle: unknown): void {
    if (this.pending === handle) this.pending = undefined;
  }
  fire(): void {
    const p = this.pending;
    if (!p) throw new Error('no refresh scheduled');
    this.pending = undefined;
    p.callback();
  }
}

interface Recorded {
  readonly results: LoadResult[];
  readonly changes: { snapshot: TelegramConfigSnapshot; files: TelegramFile[] }[];
}

function recorder(): Recorded & Pick<TelegramConfigOptions, 'listener'> {
  const results: LoadResult[] = [];
  const changes: Recorded['changes'] = [];
  return {
    results,
    changes,
    listener: {
      result: (r) => results.push(r),
      changed: (snapshot, files) => changes.push({ snapshot, files: [...files].sort() }),
    },
  };
}

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const outcomes = (r: Recorded) => r.results.map((x) => `${x.file}:${x.outcome}`);

describe('Telegram proxy secret and config', () => {
  let fake: FakeTelegram;
  let dir: string;
  const secret = randomBytes(128);
  const T0 = 1_750_000_000_000;
  const sources: TelegramConfigSource[] = [];

  beforeEach(async () => {
    fake = await FakeTelegram.start();
    dir = await mkdtemp(join(tmpdir(), 'mtkube-tgconfig-'));
  });

  afterEach(async () => {
    for (const s of sources.splice(0)) s.stop();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  function source(options: Partial<TelegramConfigOptions>): TelegramConfigSource {
    const s = new TelegramConfigSource({
      secretSource: fake.url('/getProxySecret'),
      configSource: fake.url('/getProxyConfig'),
      refreshIntervalMs: 3_600_000,
      now: () => T0,
      limits: { timeoutMs: 5000, maxBytes: 64 * 1024 },
      ...options,
    });
    sources.push(s);
    return s;
  }

  it('loads the secret and the config over HTTP and reports size, MD5, clusters and time for /stats', async () => {
    fake.serve('/getProxySecret', secret);
    fake.serve('/getProxyConfig', CONFIG_A);
    const rec = recorder();
    const snapshot = await source({ listener: rec.listener }).start();

    expect(snapshot.secret).to.deep.equal(secret);
    expect(snapshot.secretInfo).to.deep.equal({
      source: fake.url('/getProxySecret'),
      origin: 'fetched',
      loadedAt: T0 / 1000,
      size: 128,
      md5: md5(secret),
    });
    expect(snapshot.configInfo).to.deep.include({ size: CONFIG_A.length, md5: md5(CONFIG_A), clusters: 2 });
    expect(snapshot.config.targets.get(4)).to.deep.equal([{ host: '127.0.0.1', port: 7004 }]);
    expect(snapshot.configV6).to.equal(undefined);
    expect(outcomes(rec)).to.deep.equal(['secret:ok', 'config:ok']);
    expect(rec.changes.map((c) => c.files)).to.deep.equal([['config', 'secret']]);
  });

  it('reads both from local files when the settings name paths', async () => {
    await writeFile(join(dir, 'secret.bin'), secret);
    await writeFile(join(dir, 'multi.conf'), CONFIG_B);
    const snapshot = await source({
      secretSource: join(dir, 'secret.bin'),
      configSource: join(dir, 'multi.conf'),
    }).start();
    expect(snapshot.secret).to.deep.equal(secret);
    expect(snapshot.configInfo.source).to.equal(join(dir, 'multi.conf'));
    expect(snapshot.config.targets.get(2)).to.deep.equal([{ host: '127.0.0.1', port: 8002 }]);
  });

  it('also loads the IPv6 list when a source for it is given', async () => {
    fake.serve('/getProxySecret', secret);
    fake.serve('/getProxyConfig', CONFIG_A);
    fake.serve('/getProxyConfigV6', 'proxy_for 2 [::1]:7002;\n');
    const snapshot = await source({ configV6Source: fake.url('/getProxyConfigV6') }).start();
    expect(snapshot.configV6?.targets.get(2)).to.deep.equal([{ host: '::1', port: 7002 }]);
    expect(snapshot.configV6Info?.clusters).to.equal(1);
  });

  it('starts with the built-in middle proxies when the config cannot be fetched on the first start', async () => {
    fake.serve('/getProxySecret', secret);
    fake.serve('/getProxyConfig', 'bad gateway', 502);
    const rec = recorder();
    const snapshot = await source({ listener: rec.listener }).start();
    expect(snapshot.config).to.deep.equal(builtinProxyConfig(4));
    expect(snapshot.configInfo).to.deep.include({ source: 'built-in', origin: 'built-in', md5: '' });
    const failure = rec.results.find((r) => r.file === 'config');
    expect(failure).to.deep.include({ outcome: 'failed', kept: 'built-in' });
    expect(failure?.outcome === 'failed' && failure.error.message).to.include('HTTP 502');
  });

  it('refuses to start middle mode without a proxy secret, naming the source', async () => {
    fake.serve('/getProxyConfig', CONFIG_A);
    const error = await source({})
      .start()
      .then(
        () => expect.fail('started without a secret'),
        (e: Error) => e,
      );
    expect(error).to.be.instanceOf(MiddleModeUnavailableError);
    expect(error.message).to.include(fake.url('/getProxySecret')).and.include('direct mode');
  });

  it('rejects a secret of the wrong size and an empty body, saying which and why', async () => {
    fake.serve('/getProxySecret', randomBytes(16));
    const rec = recorder();
    await source({ listener: rec.listener })
      .start()
      .catch(() => undefined);
    expect(rec.results[0]).to.deep.include({ file: 'secret', outcome: 'rejected', kept: 'nothing' });
    expect(rec.results[0]?.outcome === 'rejected' && rec.results[0].error.message).to.equal(
      `${fake.url('/getProxySecret')}: the proxy secret has 16 bytes, expected 32..256`,
    );

    fake.serve('/getProxySecret', '');
    const rec2 = recorder();
    await source({ listener: rec2.listener })
      .start()
      .catch(() => undefined);
    expect(rec2.results[0]?.outcome === 'rejected' && rec2.results[0].error.message).to.include('empty');
  });

  describe('refresh', () => {
    let scheduler: ManualScheduler;
    let rec: ReturnType<typeof recorder>;

    beforeEach(() => {
      scheduler = new ManualScheduler();
      rec = recorder();
      fake.serve('/getProxySecret', secret);
      fake.serve('/getProxyConfig', CONFIG_A);
    });

    async function fireRefresh(s: TelegramConfigSource): Promise<void> {
      scheduler.fire();
      await s.refresh(); // joins the refresh the timer started
    }

    it('fetches again every CONFIG_REFRESH_INTERVAL and announces a changed config', async () => {
      const s = source({ scheduler, listener: rec.listener, refreshIntervalMs: 60_000 });
      await s.start();
      expect(scheduler.pending?.ms).to.equal(60_000);

      fake.serve('/getProxyConfig', CONFIG_B);
      await fireRefresh(s);
      expect(rec.changes.map((c) => c.files)).to.deep.equal([['config', 'secret'], ['config']]);
      expect(s.snapshot?.config.targets.get(2)).to.deep.equal([{ host: '127.0.0.1', port: 8002 }]);
      expect(s.snapshot?.configInfo.md5).to.equal(md5(CONFIG_B));
      await new Promise((resolve) => setImmediate(resolve));
      expect(scheduler.pending?.ms, 'the next refresh is scheduled').to.equal(60_000);
    });

    it('announces nothing when the same files come again', async () => {
      const s = source({ scheduler, listener: rec.listener });
      await s.start();
      await fireRefresh(s);
      expect(rec.changes).to.have.length(1);
      const refreshed = rec.results.slice(2);
      expect(refreshed.map((r) => r.outcome === 'ok' && r.changed)).to.deep.equal([false, false]);
    });

    it('keeps the last good config when a fetch fails, and counts the failure', async () => {
      const s = source({ scheduler, listener: rec.listener });
      await s.start();
      fake.serve('/getProxyConfig', 'oops', 500);
      fake.routes.set('/getProxySecret', { status: 200, body: '', reset: true });
      await fireRefresh(s);
      expect(outcomes(rec).slice(2)).to.deep.equal(['secret:failed', 'config:failed']);
      expect(rec.results.slice(2).map((r) => r.outcome !== 'ok' && r.kept)).to.deep.equal([
        'previous',
        'previous',
      ]);
      expect(rec.changes).to.have.length(1);
      expect(s.snapshot?.secret).to.deep.equal(secret);
      expect(s.snapshot?.configInfo.md5).to.equal(md5(CONFIG_A));
    });

    it('rejects a config that does not parse as a whole, with the line and the reason', async () => {
      const s = source({ scheduler, listener: rec.listener });
      await s.start();
      fake.serve('/getProxyConfig', 'proxy_for 2 127.0.0.1:8002;\nproxy_for 3 127.0.0.1;\n');
      await fireRefresh(s);
      const rejected = rec.results.find((r) => r.file === 'config' && r.outcome === 'rejected');
      expect(rejected?.outcome === 'rejected' && rejected.error.message).to.match(
        /getProxyConfig: the proxy config was rejected: proxy config line 2: ':' expected/,
      );
      expect(s.snapshot?.config.targets.get(2)).to.deep.equal([{ host: '127.0.0.1', port: 7001 }]);
    });

    it('stops refreshing when stopped', async () => {
      const s = source({ scheduler });
      await s.start();
      s.stop();
      expect(scheduler.pending).to.equal(undefined);
    });
  });

  describe('cache in DATA_DIR', () => {
    it('keeps the last good files so a restart without network still works', async () => {
      fake.serve('/getProxySecret', secret);
      fake.serve('/getProxyConfig', CONFIG_A);
      await source({ cacheDir: dir }).start();
      expect(await readFile(join(dir, CACHE_FILES.secret))).to.deep.equal(secret);
      expect(await readFile(join(dir, CACHE_FILES.config), 'utf8')).to.equal(CONFIG_A);

      await fake.close();
      fake = await FakeTelegram.start(); // nothing served any more
      const rec = recorder();
      const snapshot = await source({ cacheDir: dir, listener: rec.listener }).start();
      expect(snapshot.secret).to.deep.equal(secret);
      expect(snapshot.secretInfo).to.deep.include({ origin: 'cache', source: join(dir, CACHE_FILES.secret) });
      expect(snapshot.configInfo).to.deep.include({ origin: 'cache', md5: md5(CONFIG_A) });
      expect(rec.results.map((r) => r.outcome !== 'ok' && r.kept)).to.deep.equal(['cache', 'cache']);
    });

    it('does not cache a rejected config', async () => {
      fake.serve('/getProxySecret', secret);
      fake.serve('/getProxyConfig', 'garbage');
      await source({ cacheDir: dir }).start();
      const cached = await readFile(join(dir, CACHE_FILES.config)).catch(() => undefined);
      expect(cached).to.equal(undefined);
    });
  });

  describe('reading a source', () => {
    it('gives up on a server that does not answer within the deadline', async () => {
      fake.routes.set('/slow', { status: 200, body: '', hang: true });
      const started = Date.now();
      const error = await readSource(fake.url('/slow'), { timeoutMs: 100, maxBytes: 10 }).catch((e) => e);
      expect(error).to.be.instanceOf(TelegramFileError);
      expect(error.message).to.include('no answer within 100 ms');
      expect(Date.now() - started).to.be.below(2000);
    });

    it('refuses bodies and files larger than the limit', async () => {
      fake.serve('/big', Buffer.alloc(2000));
      await writeFile(join(dir, 'big'), Buffer.alloc(2000));
      for (const s of [fake.url('/big'), join(dir, 'big')]) {
        const error = await readSource(s, { timeoutMs: 500, maxBytes: 1000 }).catch((e) => e);
        expect(error.message, s).to.equal(`${s}: larger than 1000 bytes`);
      }
      const exact = await readSource(join(dir, 'big'), { timeoutMs: 500, maxBytes: 2000 });
      expect(exact.length).to.equal(2000);
    });

    it('names a missing file', async () => {
      const error = await readSource(join(dir, 'missing')).catch((e) => e);
      expect(error).to.be.instanceOf(TelegramFileError);
      expect(error.problem).to.equal('failed');
      expect(error.message).to.include('missing').and.include('ENOENT');
    });
  });

  it('sends a config to the workers as JSON and back unchanged', () => {
    const config = builtinProxyConfig(4);
    expect(configFromWire(JSON.parse(JSON.stringify(configToWire(config))))).to.deep.equal(config);
  });
});
