import { expect } from 'chai';
import { ExponentialBackoff, TokenBucket, WorkQueue } from '../../../operator/src/controller/work-queue.js';

const noLimit = {
  when: () => 0,
  forget: () => {},
  retries: () => 0,
};

describe('work queue', () => {
  it('hands out a key once however often it was added', async () => {
    const q = new WorkQueue<string>({ rateLimiter: noLimit });
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.length).to.equal(2);
    expect(await q.get()).to.equal('ns/a');
    expect(await q.get()).to.equal('ns/b');
    expect(q.length).to.equal(0);
  });

  it('never gives a key to two workers; an add during processing comes back after done', async () => {
    const q = new WorkQueue<string>({ rateLimiter: noLimit });
    q.add('ns/a');
    const key = await q.get();
    q.add('ns/a');
    expect(q.length, 'not queued while in flight').to.equal(0);
    const second = q.get();
    let handed = false;
    void second.then(() => {
      handed = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(handed).to.equal(false);
    q.done(key!);
    expect(await second).to.equal('ns/a');
  });

  it('wakes a waiting worker when a key arrives, and ends waiting workers on shut down', async () => {
    const q = new WorkQueue<string>({ rateLimiter: noLimit });
    const waiting = q.get();
    q.add('ns/x');
    expect(await waiting).to.equal('ns/x');
    const idle = q.get();
    q.shutDown();
    expect(await idle).to.equal(undefined);
    q.add('ns/y');
    expect(q.length, 'no adds after shut down').to.equal(0);
  });

  it('adds a key after a delay, keeping the earliest of several', async () => {
    const q = new WorkQueue<string>({ rateLimiter: noLimit });
    q.addAfter('ns/a', 200);
    q.addAfter('ns/a', 20);
    q.addAfter('ns/a', 500);
    const started = Date.now();
    expect(await q.get()).to.equal('ns/a');
    expect(Date.now() - started).to.be.below(150);
    q.shutDown();
  });

  it('retries with exponential backoff per key until forgotten', () => {
    const backoff = new ExponentialBackoff<string>(100, 1000);
    expect([1, 2, 3, 4, 5].map(() => backoff.when('a'))).to.deep.equal([100, 200, 400, 800, 1000]);
    expect(backoff.when('b'), 'other keys start over').to.equal(100);
    expect(backoff.retries('a')).to.equal(5);
    backoff.forget('a');
    expect(backoff.when('a')).to.equal(100);
  });

  it('limits the overall retry rate with a token bucket', () => {
    let now = 0;
    const bucket = new TokenBucket<string>(10, 2, () => now);
    expect(bucket.when('a')).to.equal(0);
    expect(bucket.when('b')).to.equal(0);
    expect(bucket.when('c'), 'burst spent: wait for a token').to.be.closeTo(100, 1e-6);
    now += 1000;
    expect(bucket.when('d')).to.equal(0);
  });

  it('reports depth, adds and retries to an observer', async () => {
    const seen = { adds: 0, retries: 0, depth: [] as number[] };
    const q = new WorkQueue<string>({
      rateLimiter: noLimit,
      observer: { added: () => seen.adds++, retried: () => seen.retries++, depth: (n) => seen.depth.push(n) },
    });
    q.add('a');
    q.add('b');
    await q.get();
    q.addRateLimited('a');
    expect(seen.adds, 'a retry without delay is an add').to.equal(3);
    expect(seen.retries).to.equal(1);
    expect(seen.depth, 'a is still in flight').to.deep.equal([1, 2, 1]);
    q.done('a');
    expect(seen.depth).to.deep.equal([1, 2, 1, 2]);
    q.shutDown();
  });
});
