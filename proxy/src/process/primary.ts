// The primary process: forks the workers with their settings, restarts a worker that dies, and
// drains everything on shutdown. What the workers and the primary say to each other beyond that
// belongs to the features, which register their messages on the PrimaryIpc.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log/logger.js';
import { type Dropped, type Message, type MessageKind, MessageRouter } from './ipc.js';
import { DRAIN, LISTEN_FAILED, LISTENING, START } from './lifecycle-messages.js';
import { workerExecArgv } from './worker-heap.js';

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long is considered healthy, and the restart delay starts over. */
const HEALTHY_AFTER_MS = 60_000;
const KILL_GRACE_MS = 2_000;

/** One worker, as the features in the primary see it. */
export interface WorkerLink {
  readonly id: number;
  /** False once the worker has exited: nothing it was granted will be given back by it. */
  readonly alive: boolean;
  send<T extends Message>(kind: MessageKind<T>, message: T): void;
}

/** The primary's end of the channel: features register what they answer and what they send. */
export class PrimaryIpc {
  readonly #router = new MessageRouter<WorkerLink>();
  readonly #live = new Set<WorkerLink>();
  readonly #exitHandlers: ((worker: WorkerLink) => void)[] = [];

  /** Logs dropped messages from now on, at most once a minute. */
  reportDrops(log: Logger): void {
    this.#router.reportDrops(log, 'a worker');
  }

  /** Handles messages of `kind` from any worker. */
  on<T extends Message>(
    kind: MessageKind<T>,
    handler: (message: T, worker: WorkerLink) => void | Promise<void>,
  ): void {
    this.#router.on(kind, handler);
  }

  /** Runs when a worker has exited, before it is restarted. */
  onWorkerExit(handler: (worker: WorkerLink) => void): void {
    this.#exitHandlers.push(handler);
  }

  /** Sends to every worker that is up. */
  broadcast<T extends Message>(kind: MessageKind<T>, message: T): void {
    for (const worker of this.#live) worker.send(kind, message);
  }

  /** Messages dropped since start: unknown type, wrong shape, or a handler that failed. */
  get dropped(): Readonly<Record<Dropped, number>> {
    return this.#router.dropped;
  }

  /** The process core's part: a worker joined, sent something, or exited. */
  attach(worker: WorkerLink): void {
    this.#live.add(worker);
  }

  deliver(raw: unknown, worker: WorkerLink): void {
    this.#router.dispatch(raw, worker);
  }

  detach(worker: WorkerLink): void {
    this.#live.delete(worker);
    for (const handler of this.#exitHandlers) handler(worker);
  }
}

class ClusterWorkerLink implements WorkerLink {
  alive = true;
  readonly worker: Worker;
  constructor(worker: Worker) {
    this.worker = worker;
  }
  get id(): number {
    return this.worker.id;
  }
  send<T extends Message>(_kind: MessageKind<T>, message: T): void {
    if (this.worker.isConnected()) this.worker.send(message);
  }
}

export interface PrimaryOptions<S> {
  readonly workers: number;
  /** What each worker is started with; see PrimaryHandle.updateSettings. */
  readonly settings: S;
  readonly drainTimeoutMs: number;
  /** The error to start-up with when a worker cannot listen (errno code and message). */
  readonly listenError: (code: string, message: string) => Error;
  readonly log: Logger;
}

export interface PrimaryHandle<S> {
  /** Resolves when every worker is listening. */
  readonly ready: Promise<void>;
  /** Resolves when the primary has shut down (after a drain). */
  readonly stopped: Promise<void>;
  readonly shutdown: (signal: string) => Promise<void>;
  readonly workerRestarts: () => number;
  /** Workers that are up and listening now. */
  readonly listeningWorkers: () => number;
  /** Changes the settings workers started from now on get (a feature broadcasts the change). */
  readonly updateSettings: (change: (settings: S) => S) => void;
}

export function runPrimary<S>(options: PrimaryOptions<S>, ipc: PrimaryIpc): PrimaryHandle<S> {
  const { log } = options;
  let settings = options.settings;
  let shuttingDown = false;
  let restartDelay = RESTART_MIN_MS;
  const links = new Map<Worker, ClusterWorkerLink>();
  const startedAt = new Map<Worker, number>();
  const listening = new Set<WorkerLink>();
  const starting = new Map<WorkerLink, { resolve: () => void; reject: (err: Error) => void }>();
  let restarts = 0;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });

  ipc.on(LISTENING, (_, worker) => {
    listening.add(worker);
    starting.get(worker)?.resolve();
    starting.delete(worker);
  });
  ipc.on(LISTEN_FAILED, (msg, worker) => {
    starting.get(worker)?.reject(options.listenError(msg.code, msg.message));
    starting.delete(worker);
  });
  ipc.onWorkerExit((worker) => listening.delete(worker));

  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  const fork = (): Promise<void> => {
    const worker = cluster.fork();
    const link = new ClusterWorkerLink(worker);
    links.set(worker, link);
    startedAt.set(worker, Date.now());
    ipc.attach(link);
    return new Promise((resolve, reject) => {
      starting.set(link, { resolve, reject });
      worker.on('message', (msg: unknown) => ipc.deliver(msg, link));
      worker.once('online', () => link.send(START, { type: 'start', settings }));
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const link = links.get(worker);
    links.delete(worker);
    if (link !== undefined) {
      link.alive = false;
      starting.delete(link);
      ipc.detach(link);
    }
    const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
    startedAt.delete(worker);
    if (shuttingDown) return;
    restarts++;
    log.error('worker died; restarting it', { pid: worker.process.pid, code, signal, livedMs: lived });
    restartDelay = lived > HEALTHY_AFTER_MS ? RESTART_MIN_MS : Math.min(restartDelay * 2, RESTART_MAX_MS);
    setTimeout(() => {
      if (shuttingDown) return;
      fork().then(
        () => log.info('worker restarted'),
        (err: Error) => log.error('restarted worker failed to listen', { error: err.message }),
      );
    }, restartDelay).unref();
  });

  const ready = Promise.all(Array.from({ length: options.workers }, fork)).then(() => {});

  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return stopped;
    shuttingDown = true;
    log.info('drain started', { signal, timeoutSeconds: options.drainTimeoutMs / 1000 });
    ipc.broadcast(DRAIN, { type: 'drain', timeoutMs: options.drainTimeoutMs });
    const deadline = Date.now() + options.drainTimeoutMs + KILL_GRACE_MS;
    while (links.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const worker of links.keys()) worker.process.kill('SIGKILL');
    log.info('drain finished', { killed: links.size });
    resolveStopped();
  };

  return {
    ready,
    stopped,
    shutdown,
    workerRestarts: () => restarts,
    listeningWorkers: () => listening.size,
    updateSettings: (change) => {
      settings = change(settings);
    },
  };
}
