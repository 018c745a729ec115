// A worker process: waits for its settings from the primary, starts its parts (which register the
// messages they answer on the WorkerIpc), says when it listens, and drains when told to.
import type { Logger } from '../log/logger.js';
import { type Dropped, type Message, type MessageKind, MessageRouter } from './ipc.js';
import { DRAIN, LISTEN_FAILED, LISTENING, START } from './lifecycle-messages.js';

/** Messages that arrive before the parts that answer them exist; more are dropped as unknown. */
const MAX_HELD = 256;

/** The worker's end of the channel. */
export interface WorkerIpc {
  /** Handles messages of `kind` from the primary. */
  on<T extends Message>(kind: MessageKind<T>, handler: (message: T) => void): void;
  /** Sends to the primary; `then` runs once the message is handed over (or cannot be). */
  send<T extends Message>(kind: MessageKind<T>, message: T, then?: () => void): void;
  /** Messages from the primary dropped since start. */
  readonly dropped: Readonly<Record<Dropped, number>>;
  /** Logs dropped messages from now on, at most once a minute (a logger exists only once started). */
  reportDrops(log: Logger): void;
}

/** A started worker: what the core needs to drain it. */
export interface RunningWorker {
  /** Stops accepting, waits up to `timeoutMs` for clients to finish, closes the rest. */
  drain(timeoutMs: number): Promise<void>;
}

/** Builds the worker's parts from its settings; rejects with an errno error when it cannot listen. */
export type StartWorker<S> = (settings: S, ipc: WorkerIpc) => Promise<RunningWorker>;

function sendToPrimary(message: Message, then: () => void): void {
  if (process.connected && process.send !== undefined) process.send(message, undefined, undefined, then);
  else then();
}

/** The worker's registry. Messages of no registered type are held while the worker is starting. */
export class ChildIpc implements WorkerIpc {
  readonly #router: MessageRouter<undefined>;
  readonly #send: (message: Message, then: () => void) => void;
  #held: unknown[] | undefined = [];

  /** `send` hands a message to the primary: process.send unless a test gives another. */
  constructor(send: (message: Message, then: () => void) => void = sendToPrimary) {
    this.#router = new MessageRouter();
    this.#send = send;
  }

  reportDrops(log: Logger): void {
    this.#router.reportDrops(log, 'the primary');
  }

  get dropped(): Readonly<Record<Dropped, number>> {
    return this.#router.dropped;
  }

  on<T extends Message>(kind: MessageKind<T>, handler: (message: T) => void): void {
    this.#router.on(kind, handler);
  }

  send<T extends Message>(_kind: MessageKind<T>, message: T, then: () => void = () => {}): void {
    this.#send(message, then);
  }

  deliver(raw: unknown): void {
    const type = (raw as Partial<Message> | null)?.type;
    const held = this.#held;
    if (held !== undefined && typeof type === 'string' && !this.#router.handles(type)) {
      if (held.length < MAX_HELD) {
        held.push(raw);
        return;
      }
    }
    this.#router.dispatch(raw, undefined);
  }

  /** The worker's parts are registered: deliver what was held, and hold nothing from now on. */
  started(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const raw of held) this.#router.dispatch(raw, undefined);
  }
}

export function runWorker<S>(start: StartWorker<S>): void {
  const ipc = new ChildIpc();
  let running: RunningWorker | undefined;
  let starting = false;
  ipc.on(START, (msg) => {
    if (starting) return;
    starting = true;
    start(msg.settings as S, ipc).then(
      (r) => {
        running = r;
        ipc.started();
        ipc.send(LISTENING, { type: 'listening' });
      },
      (err: NodeJS.ErrnoException) => {
        ipc.send(
          LISTEN_FAILED,
          { type: 'listen-failed', code: err.code ?? 'UNKNOWN', message: err.message },
          () => process.exit(1),
        );
      },
    );
  });
  ipc.on(DRAIN, (msg) => {
    void (running?.drain(msg.timeoutMs) ?? Promise.resolve()).then(() => process.exit(0));
  });
  process.on('message', (msg: unknown) => ipc.deliver(msg));
  // The primary going away must not leave orphaned workers holding the port.
  process.on('disconnect', () => process.exit(0));
  // SIGTERM/SIGINT are the primary's to handle; it tells us to drain.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
}
