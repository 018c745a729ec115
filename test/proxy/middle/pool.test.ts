// The worker's pool of middle-end connections against two stand-in middle proxies: which target a
// new client gets, what a config change does to new and old clients, and reconnecting after loss.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { type MiddleProxyConfig, parseProxyConfig } from '../../../proxy/src/middle/codec/proxy-config.js';
import { ProxyReqHeader } from '../../../proxy/src/middle/codec/rpc-proxy-req.js';
import {
  type MiddleBinding,
  type MiddlePoolOptions,
  MiddleProxyPool,
  MiddleUnavailableError,
} from '../../../proxy/src/middle/pool.js';
import type { Scheduler } from '../../../proxy/src/timers/scheduler.js';
import { RecordingClient } from '../../support/recording-middle-client.js';
import { StandinMiddleProxy } from '../../support/standin-middle-proxy.js';

/** Timers the test fires by hand (reconnects and acquire deadlines). */
class ManualScheduler implements Scheduler {
  readonly timers = new Set<{ callback: () => void; ms: number }>();
  setTimeout(callback: () => void, ms: number): unknown {
    const t = { callback, ms };
    this.timers.add(t);
    return t;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as { callback: () => void; ms: number });
  }
  get delays(): number[] {
    return [...this.timers].map((t) => t.ms);
  }
  fireAll(): void {
    const due = [...this.timers];
    this.timers.clear();
    for (const t of due) t.callback();
  }
}

const secret = randomBytes(128);

function config(text: string): MiddleProxyConfig {
  return parseProxyConfig(text);
}

function send(binding: MiddleBinding, fill: number): void {
  const header = new ProxyReqHeader({
    connId: binding.connId,
    transport: 'abridged',
    client: { ip: '198.51.100.7', port: 40000 },
    proxy: { ip: '203.0.113.1', port: 443 },
  });
  binding.send(header, Buffer.alloc(64, fill), false);
}

describe('middle-end connection pool', () => {
  let a: StandinMiddleProxy;
  let b: StandinMiddleProxy;
  let pool: MiddleProxyPool;
  let scheduler: ManualScheduler;
  let pick: number;

  beforeEach(async () => {
    a = await StandinMiddleProxy.start({ secret });
    b = await StandinMiddleProxy.start({ secret });
    scheduler = new ManualScheduler();
    pick = 0;
  });

  afterEach(async () => {
    pool?.close();
    await a.close();
    await b.close();
  });

  const line = (dc: number, s: StandinMiddleProxy) => `proxy_for ${dc} ${s.host}:${s.port};`;

  function startPool(cfg: MiddleProxyConfig, options: Partial<MiddlePoolOptions> = {}): MiddleProxyPool {
    pool = new MiddleProxyPool({
      secret,
      config: cfg,
      minConnections: 1,
      scheduler,
      random: () => pick,
      ...options,
    });
    pool.start();
    return pool;
  }

  const waitFor = (condition: () => boolean) => a.waitFor(condition, 3000);

  it('connects to every target of the config and counts declared and ready targets', async () => {
    startPool(config(`default 2;\n${line(2, a)}\n${line(2, b)}\n${line(4, b)}\n`), { minConnections: 2 });
    expect(pool.declaredTargets).to.equal(2);
    await waitFor(() => pool.readyConnections === 4);
    expect(pool.readyTargets).to.equal(2);
    expect(a.handshakesCompleted).to.equal(2);
    expect(b.handshakesCompleted).to.equal(2);
    expect(pool.targetStats().map((t) => [t.target, t.ready])).to.deep.equal([
      [`127.0.0.1:${a.port}`, 2],
      [`127.0.0.1:${b.port}`, 2],
    ]);
  });

  it("binds a client to a random target of its DC's cluster, and unknown DCs to the default cluster", async () => {
    startPool(config(`default 4;\n${line(2, a)}\n${line(2, b)}\n${line(4, b)}\n`));
    await waitFor(() => pool.readyTargets === 2);
    pick = 0;
    expect(pool.bind(2, new RecordingClient())?.target).to.equal(`127.0.0.1:${a.port}`);
    pick = 0.99;
    expect(pool.bind(2, new RecordingClient())?.target).to.equal(`127.0.0.1:${b.port}`);
    pick = 0;
    expect(pool.bind(-7, new RecordingClient())?.target, 'DC -7 has no cluster: default 4').to.equal(
      `127.0.0.1:${b.port}`,
    );
    expect(pool.boundClients).to.equal(3);
  });

  it('gives every client its own conn id and the echo of its own packets', async () => {
    startPool(config(line(2, a)));
    await waitFor(() => pool.readyTargets === 1);
    const clients = Array.from({ length: 5 }, () => new RecordingClient());
    const bindings = clients.map((c) => pool.bind(2, c)!);
    expect(new Set(bindings.map((x) => x.connId)).size).to.equal(5);
    bindings.forEach((binding, i) => {
      send(binding, i + 1);
    });
    await waitFor(() => clients.every((c) => c.answers.length === 1));
    clients.forEach((c, i) => {
      expect(c.answers[0]).to.deep.equal(Buffer.alloc(64, i + 1));
    });
  });

  it('draws another conn id when the random one is taken on that connection', async () => {
    const draws = [Buffer.alloc(8, 1), Buffer.alloc(8, 1), Buffer.alloc(8, 2)];
    startPool(config(line(2, a)));
    await waitFor(() => pool.readyTargets === 1);
    pool.close();
    const fixed = (n: number) => (n === 8 ? (draws.shift() ?? randomBytes(8)) : randomBytes(n));
    startPool(config(line(2, a)), { randomBytes: fixed });
    await waitFor(() => pool.readyTargets === 1);
    const ids = [pool.bind(2, new RecordingClient())!.connId, pool.bind(2, new RecordingClient())!.connId];
    expect(ids[0]).to.not.equal(ids[1]);
  });

  it('opens one more connection when the ready ones carry their share of clients', async () => {
    startPool(config(line(2, a)), { clientsPerConnection: 2, maxConnections: 2 });
    await waitFor(() => pool.readyConnections === 1);
    pool.bind(2, new RecordingClient());
    expect(a.connectionsAccepted).to.equal(1);
    pool.bind(2, new RecordingClient());
    await waitFor(() => pool.readyConnections === 2);
    pool.bind(2, new RecordingClient());
    pool.bind(2, new RecordingClient());
    pool.bind(2, new RecordingClient());
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pool.readyConnections, 'never beyond maxConnections').to.equal(2);
    expect(pool.targetStats()[0]!.clients).to.equal(5);
  });

  describe('config change', () => {
    it('sends new clients to the new target and keeps old clients on the old one until they leave', async () => {
      startPool(config(line(2, a)));
      await waitFor(() => pool.readyTargets === 1);
      const old = new RecordingClient();
      const oldBinding = pool.bind(2, old)!;

      pool.applyConfig(config(line(2, b)));
      expect(pool.declaredTargets).to.equal(1);
      expect(pool.inactiveTargets).to.equal(1);
      await waitFor(() => pool.readyTargets === 1 && b.handshakesCompleted === 1);
      const fresh = new RecordingClient();
      expect(pool.bind(2, fresh)?.target).to.equal(`127.0.0.1:${b.port}`);

      send(oldBinding, 0x0a);
      await waitFor(() => old.answers.length === 1);
      expect(a.requests.map((r) => r.connId)).to.deep.equal([oldBinding.connId]);
      expect(a.openConnections).to.equal(1);

      oldBinding.release();
      await waitFor(() => a.openConnections === 0);
      expect(a.closedConnIds).to.deep.equal([oldBinding.connId]);
      expect(pool.inactiveTargets).to.equal(0);
      expect(old.closes, 'the old client was never closed by the pool').to.deep.equal([]);
    });

    it('closes idle connections of a removed target at once', async () => {
      startPool(config(`${line(2, a)}\n${line(4, b)}`));
      await waitFor(() => pool.readyTargets === 2);
      pool.applyConfig(config(line(4, b)));
      await waitFor(() => a.openConnections === 0);
      expect(pool.targetStats().map((t) => t.target)).to.deep.equal([`127.0.0.1:${b.port}`]);
    });

    it('uses a new proxy secret for the connections it opens afterwards', async () => {
      const other = randomBytes(64);
      const c = await StandinMiddleProxy.start({ secret: other });
      try {
        startPool(config(line(2, a)));
        await waitFor(() => pool.readyTargets === 1);
        pool.applySecret(other);
        pool.applyConfig(config(line(2, c)));
        await waitFor(() => c.handshakesCompleted === 1);
        expect(c.errors).to.deep.equal([]);
      } finally {
        pool.close();
        await c.close();
      }
    });
  });

  describe('connection loss', () => {
    it('closes the bound clients and reconnects after a jittered backoff', async () => {
      const lost: number[] = [];
      startPool(config(line(2, a)), { events: { lost: (_t, _e, retry) => lost.push(retry) } });
      await waitFor(() => pool.readyTargets === 1);
      const clients = [new RecordingClient(), new RecordingClient()];
      const bindings = clients.map((c) => pool.bind(2, c)!);

      a.dropConnections();
      await waitFor(() => lost.length === 1);
      expect(clients.map((c) => c.closes)).to.deep.equal([['connection-lost'], ['connection-lost']]);
      expect(bindings.map((x) => x.open)).to.deep.equal([false, false]);
      expect(pool.readyTargets).to.equal(0);
      expect(pool.boundClients).to.equal(0);
      expect(lost, 'first retry: random 0 gives half of the initial 500 ms').to.deep.equal([250]);
      expect(pool.bind(2, new RecordingClient()), 'nothing to bind to meanwhile').to.equal(undefined);

      scheduler.fireAll();
      await waitFor(() => pool.readyTargets === 1);
      expect(a.connectionsAccepted).to.equal(2);
    });

    it('doubles the delay after every failed attempt, up to the cap', async () => {
      const failures: number[] = [];
      pick = 0.5;
      const port = a.port;
      await a.close();
      startPool(config(`proxy_for 2 127.0.0.1:${port};`), {
        backoffInitialMs: 100,
        backoffMaxMs: 700,
        events: { connectFailed: (_t, _e, retry) => failures.push(retry) },
      });
      for (let attempt = 1; attempt <= 5; attempt++) {
        await waitFor(() => failures.length === attempt);
        scheduler.fireAll();
      }
      // [d/2, d) with random 0.5: 3/4 of 100, 200, 400, 700, 700
      expect(failures).to.deep.equal([75, 150, 300, 525, 525]);
      a = await StandinMiddleProxy.start({ secret }); // for afterEach
    });
  });

  describe('acquire', () => {
    it('waits for a connection that is still being made', async () => {
      startPool(config(line(2, a)));
      const client = new RecordingClient();
      const binding = await pool.acquire(2, client, 5000);
      expect(binding.open).to.equal(true);
      send(binding, 3);
      await waitFor(() => client.answers.length === 1);
    });

    it('gives up after the deadline when no middle proxy can be reached', async () => {
      const port = a.port;
      await a.close();
      startPool(config(`proxy_for 2 127.0.0.1:${port};`));
      const pending = pool.acquire(2, new RecordingClient(), 1234);
      expect(scheduler.delays).to.include(1234);
      for (const t of [...scheduler.timers]) if (t.ms === 1234) t.callback();
      const error = await pending.then(
        () => expect.fail('bound'),
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(MiddleUnavailableError);
      expect(error.message).to.include('DC 2');
      a = await StandinMiddleProxy.start({ secret });
    });

    it('refuses a DC without cluster when the config has no default', async () => {
      startPool(config(`default 9;\n${line(2, a)}`));
      const error = await pool.acquire(5, new RecordingClient(), 100).catch((e: Error) => e);
      expect(error).to.be.instanceOf(MiddleUnavailableError);
    });
  });
});
