import type { KubernetesObject } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { type InformerFactory, ResilientInformer } from '../../../operator/src/controller/informer.js';
import type { KubeObject } from '../../../operator/src/controller/kube-client.js';
import { silentLogger } from '../../../operator/src/logging.js';
import { eventually } from '../../cluster/eventually.js';

type Callback = (arg?: unknown) => void;

/** Stands in for client-node's ListWatch: lists from a shared "server", then can fail or go quiet. */
class FakeInformer {
  readonly callbacks = new Map<string, Callback[]>();
  cache = new Map<string, KubernetesObject>();
  stopped = false;
  constructor(readonly server: FakeServer) {}
  on(verb: string, cb: Callback): void {
    this.callbacks.set(verb, [...(this.callbacks.get(verb) ?? []), cb]);
  }
  off(): void {}
  emit(verb: string, arg?: unknown): void {
    for (const cb of this.callbacks.get(verb) ?? []) cb(arg);
  }
  async start(): Promise<void> {
    this.emit('connect');
    if (this.server.down) {
      this.emit('error', new Error('connect ECONNREFUSED'));
      return;
    }
    for (const obj of this.server.objects) {
      this.cache.set(obj.metadata!.name!, obj);
      this.emit('add', obj);
    }
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  get(name: string): KubernetesObject | undefined {
    return this.cache.get(name);
  }
  list(): KubernetesObject[] {
    return [...this.cache.values()];
  }
}

class FakeServer {
  down = false;
  objects: KubernetesObject[] = [];
  informers: FakeInformer[] = [];
  factory: InformerFactory = () => {
    const i = new FakeInformer(this);
    this.informers.push(i);
    return i as unknown as ReturnType<InformerFactory>;
  };
  get latest(): FakeInformer {
    return this.informers.at(-1)!;
  }
}

const obj = (name: string): KubernetesObject => ({
  apiVersion: 'v1',
  kind: 'Thing',
  metadata: { name, namespace: 'ns' },
});

function informer(server: FakeServer, seen: string[], extra: { stallTimeoutMs?: number } = {}) {
  return new ResilientInformer<KubeObject>({
    kubeConfig: new KubeConfig(),
    path: '/api/v1/things',
    list: async () => ({ metadata: {}, items: [] }),
    resource: 'things',
    onChange: (o, kind) => seen.push(`${kind} ${o.metadata?.name}`),
    log: silentLogger,
    minBackoffMs: 20,
    maxBackoffMs: 100,
    factory: server.factory,
    ...extra,
  });
}

describe('resilient informer', () => {
  it('lists, then delivers events of the live watch', async () => {
    const server = new FakeServer();
    server.objects = [obj('a')];
    const seen: string[] = [];
    const inf = informer(server, seen);
    await inf.start();
    expect(inf.synced).to.equal(true);
    expect(inf.get('a', 'ns')?.metadata?.name).to.equal('a');
    server.latest.emit('update', obj('a'));
    // Once listed, everything is handed over (as updates: handlers only look, they do not diff).
    expect(seen).to.deep.equal(['update a', 'update a']);
    await inf.stop();
  });

  it('after the API server went away it retries with backoff and relists when it is back', async () => {
    const server = new FakeServer();
    server.objects = [obj('a')];
    const seen: string[] = [];
    const inf = informer(server, seen);
    await inf.start();
    server.down = true;
    server.objects = [obj('a'), obj('b')];
    server.latest.emit('error', new Error('read ECONNRESET'));
    await eventually(async () => expect(server.informers.length).to.be.at.least(3), {
      timeoutMs: 2000,
      intervalMs: 10,
    });
    expect(inf.get('a', 'ns'), 'the old cache answers meanwhile').to.not.equal(undefined);
    server.down = false;
    await eventually(async () => expect(inf.get('b', 'ns')).to.not.equal(undefined), {
      timeoutMs: 2000,
      intervalMs: 10,
    });
    expect(seen).to.include('update b');
    expect(server.informers.slice(0, -1).every((i) => i.stopped)).to.equal(true);
    await inf.stop();
  });

  it('replaces a watch that went silent, and leaves a lively one alone', async () => {
    const server = new FakeServer();
    const seen: string[] = [];
    const inf = informer(server, seen, { stallTimeoutMs: 3000 });
    await inf.start();
    // Reconnects and events count as signs of life.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 400));
      server.latest.emit('connect');
    }
    expect(server.informers).to.have.length(1);
    // Then nothing at all: the watchdog relists.
    await eventually(async () => expect(server.informers).to.have.length(2), {
      timeoutMs: 8000,
      intervalMs: 50,
    });
    expect(server.informers[0]!.stopped).to.equal(true);
    await inf.stop();
  });

  it('ignores events from an informer it has replaced', async () => {
    const server = new FakeServer();
    const seen: string[] = [];
    const inf = informer(server, seen);
    await inf.start();
    const old = server.latest;
    await inf.restart('stall');
    old.emit('add', obj('ghost'));
    expect(seen).to.not.include('add ghost');
    await inf.stop();
  });
});
