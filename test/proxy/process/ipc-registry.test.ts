// The process core's message registry: a feature registers its own messages, and whatever else a
// worker sends is counted and dropped; the primary keeps running.
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { createLogger } from '../../../proxy/src/log/logger.js';
import { field, type Message, messageKind } from '../../../proxy/src/process/ipc.js';
import { PrimaryIpc, runPrimary, type WorkerLink } from '../../../proxy/src/process/primary.js';
import { ChildIpc } from '../../../proxy/src/process/worker.js';
import { ECHO } from './fixtures/echo-message.js';

const GREETING = messageKind('greeting', { name: field.string });

function fakeWorker(id: number): WorkerLink & { sent: Message[] } {
  const sent: Message[] = [];
  return { id, alive: true, sent, send: (_kind, message) => sent.push(message) };
}

describe('process: the IPC registry', () => {
  it('hands a feature the messages it registered, with the worker that sent them', () => {
    const ipc = new PrimaryIpc();
    const seen: string[] = [];
    ipc.on(GREETING, (msg, worker) => {
      seen.push(`${worker.id}:${msg.name}`);
      worker.send(GREETING, { type: 'greeting', name: `hello ${msg.name}` });
    });
    const worker = fakeWorker(3);
    ipc.attach(worker);
    ipc.deliver({ type: 'greeting', name: 'alice' }, worker);
    expect(seen).to.deep.equal(['3:alice']);
    expect(worker.sent).to.deep.equal([{ type: 'greeting', name: 'hello alice' }]);
    expect(ipc.dropped).to.deep.equal({ unknown: 0, malformed: 0, failed: 0 });
  });

  it('lets two features listen to the same message, but not two kinds share one type', () => {
    const ipc = new PrimaryIpc();
    const seen: string[] = [];
    ipc.on(GREETING, () => {
      seen.push('counters');
    });
    ipc.on(GREETING, () => {
      seen.push('quotas');
    });
    ipc.deliver({ type: 'greeting', name: 'bob' }, fakeWorker(1));
    expect(seen).to.deep.equal(['counters', 'quotas']);
    expect(() => ipc.on(messageKind('greeting', {}), () => {})).to.throw(/share the type 'greeting'/);
  });

  it('counts and ignores a message nobody registered', () => {
    const ipc = new PrimaryIpc();
    ipc.on(GREETING, () => {});
    expect(() => ipc.deliver({ type: 'from-a-newer-version', x: 1 }, fakeWorker(1))).not.to.throw();
    expect(ipc.dropped.unknown).to.equal(1);
  });

  it('counts malformed messages and failing handlers without throwing, and keeps serving', async () => {
    const ipc = new PrimaryIpc();
    const names: string[] = [];
    ipc.on(GREETING, (msg) => {
      if (msg.name === 'boom') throw new Error('handler bug');
      if (msg.name === 'later') return Promise.reject(new Error('async bug'));
      names.push(msg.name);
    });
    const worker = fakeWorker(1);
    for (const raw of [
      null,
      'text',
      42,
      [],
      { type: 7 },
      { type: 'greeting' },
      { type: 'greeting', name: 5 },
    ]) {
      ipc.deliver(raw, worker);
    }
    ipc.deliver({ type: 'greeting', name: 'boom' }, worker);
    ipc.deliver({ type: 'greeting', name: 'later' }, worker);
    ipc.deliver({ type: 'greeting', name: 'carol' }, worker);
    await new Promise((r) => setImmediate(r));
    expect(names).to.deep.equal(['carol']);
    expect(ipc.dropped).to.deep.equal({ unknown: 0, malformed: 7, failed: 2 });
  });

  it('tells features when a worker exits and stops broadcasting to it', () => {
    const ipc = new PrimaryIpc();
    const a = fakeWorker(1);
    const b = fakeWorker(2);
    const gone: number[] = [];
    ipc.onWorkerExit((w) => gone.push(w.id));
    ipc.attach(a);
    ipc.attach(b);
    ipc.detach(a);
    ipc.broadcast(GREETING, { type: 'greeting', name: 'all' });
    expect(gone).to.deep.equal([1]);
    expect(a.sent).to.deep.equal([]);
    expect(b.sent).to.deep.equal([{ type: 'greeting', name: 'all' }]);
  });

  it('holds in the worker what arrives before the part that answers it, and delivers it once started', () => {
    const sent: Message[] = [];
    const ipc = new ChildIpc((message, then) => {
      sent.push(message);
      then();
    });
    const seen: string[] = [];
    ipc.deliver({ type: 'greeting', name: 'early' });
    ipc.on(GREETING, (msg) => seen.push(msg.name));
    expect(seen).to.deep.equal([]);
    ipc.started();
    ipc.deliver({ type: 'greeting', name: 'on time' });
    ipc.deliver({ type: 'unknown-after-start' });
    ipc.send(GREETING, { type: 'greeting', name: 'to primary' });
    expect(seen).to.deep.equal(['early', 'on time']);
    expect(ipc.dropped.unknown).to.equal(1);
    expect(sent).to.deep.equal([{ type: 'greeting', name: 'to primary' }]);
  });

  it('a real worker that sends garbage does not take the primary down', async function () {
    this.timeout(20_000);
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./fixtures/noisy-worker.ts', import.meta.url)) });
    const ipc = new PrimaryIpc();
    const answers: string[] = [];
    const answered = new Promise<void>((resolve) => {
      ipc.on(ECHO, (msg, worker) => {
        if (msg.text === 'throw') throw new Error('a handler bug');
        answers.push(msg.text);
        if (msg.text === 'hi') worker.send(ECHO, { type: 'echo', text: 'hi' });
        else resolve();
      });
    });
    const primary = runPrimary(
      {
        workers: 1,
        settings: { greeting: 'hi' },
        drainTimeoutMs: 1000,
        listenError: (code, message) => new Error(`${code}: ${message}`),
        log: createLogger('error'),
      },
      ipc,
    );
    try {
      await primary.ready;
      await answered;
      expect(answers).to.deep.equal(['hi', 'hi back']);
      expect(primary.listeningWorkers()).to.equal(1);
      expect(ipc.dropped).to.deep.equal({ unknown: 1, malformed: 3, failed: 1 });
      expect(primary.workerRestarts()).to.equal(0);
    } finally {
      await primary.shutdown('test');
    }
  });
});
