// Messages between the primary and its workers over the cluster IPC channel, as a registry: each
// feature declares its own message kinds (a type tag and a shape check) and registers handlers for
// them, so the process core never lists what features exist. On the wire a message is one JSON
// object `{ type, ...fields }`: buffers travel as hex, maps as entry lists.

/** Every message on the channel. */
export interface Message {
  readonly type: string;
}

/** One kind of message: its tag on the wire and a cheap check of the shape of what arrived. */
export interface MessageKind<T extends Message> {
  readonly type: T['type'];
  /** False: the message is dropped and counted as malformed, never handed to a handler. */
  readonly valid: (message: Readonly<Record<string, unknown>>) => boolean;
}

/** Declares a kind of message; `valid` sees the object after its `type` matched. */
export function messageKind<T extends Message>(
  type: T['type'],
  valid: (message: Readonly<Record<string, unknown>>) => boolean = () => true,
): MessageKind<T> {
  return { type, valid };
}

/** Shape checks for `valid`: what arrives came from another process. */
export const isString = (v: unknown): v is string => typeof v === 'string';
export const isNumberArray = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((n) => typeof n === 'number');

/** Why a message went to no handler. */
export type Dropped = 'unknown' | 'malformed' | 'failed';

type Handler<From> = (message: never, from: From) => void | Promise<void>;

interface Registration<From> {
  readonly kind: MessageKind<Message>;
  readonly handlers: Handler<From>[];
}

/**
 * Hands each message to the handlers registered for its type. A message of no registered type, of
 * the wrong shape, or whose handler throws (or rejects) is counted and reported, never rethrown:
 * one bad message must not take down the process that holds every client.
 */
export class MessageRouter<From> {
  readonly #registrations = new Map<string, Registration<From>>();
  readonly #onDrop: (reason: Dropped, type: string, error?: Error) => void;
  /** Messages dropped since start, by reason. */
  readonly dropped: Record<Dropped, number> = { unknown: 0, malformed: 0, failed: 0 };

  constructor(onDrop: (reason: Dropped, type: string, error?: Error) => void = () => {}) {
    this.#onDrop = onDrop;
  }

  /** Adds a handler for `kind`; several features may listen to the same kind. */
  on<T extends Message>(
    kind: MessageKind<T>,
    handler: (message: T, from: From) => void | Promise<void>,
  ): void {
    const known = this.#registrations.get(kind.type);
    if (known !== undefined && known.kind !== kind) {
      throw new Error(`two message kinds share the type '${kind.type}'`);
    }
    const registration = known ?? { kind: kind as MessageKind<Message>, handlers: [] };
    registration.handlers.push(handler as Handler<From>);
    this.#registrations.set(kind.type, registration);
  }

  /** Whether a handler is registered for messages of this type. */
  handles(type: string): boolean {
    return this.#registrations.has(type);
  }

  /** Delivers one message as it came off the channel. */
  dispatch(raw: unknown, from: From): void {
    if (typeof raw !== 'object' || raw === null || typeof (raw as Message).type !== 'string') {
      this.#drop('malformed', '?');
      return;
    }
    const message = raw as Message & Record<string, unknown>;
    const registration = this.#registrations.get(message.type);
    if (registration === undefined) {
      this.#drop('unknown', message.type);
      return;
    }
    let valid = false;
    try {
      valid = registration.kind.valid(message);
    } catch {}
    if (!valid) {
      this.#drop('malformed', message.type);
      return;
    }
    for (const handler of registration.handlers) {
      try {
        const done = handler(message as never, from);
        if (done instanceof Promise) done.catch((err: unknown) => this.#drop('failed', message.type, err));
      } catch (err) {
        this.#drop('failed', message.type, err);
      }
    }
  }

  #drop(reason: Dropped, type: string, err?: unknown): void {
    this.dropped[reason]++;
    const error = err === undefined ? undefined : err instanceof Error ? err : new Error(String(err));
    this.#onDrop(reason, type, error);
  }
}

/** The process core's own messages: a worker's life from its settings to its drain. */
export interface StartMessage<S> {
  readonly type: 'start';
  readonly settings: S;
}
export interface DrainMessage {
  readonly type: 'drain';
  readonly timeoutMs: number;
}
export interface ListeningMessage {
  readonly type: 'listening';
}
export interface ListenFailedMessage {
  readonly type: 'listen-failed';
  readonly code: string;
  readonly message: string;
}

export const START = messageKind<StartMessage<unknown>>(
  'start',
  (m) => typeof m.settings === 'object' && m.settings !== null,
);
export const DRAIN = messageKind<DrainMessage>('drain', (m) => typeof m.timeoutMs === 'number');
export const LISTENING = messageKind<ListeningMessage>('listening');
export const LISTEN_FAILED = messageKind<ListenFailedMessage>(
  'listen-failed',
  (m) => isString(m.code) && isString(m.message),
);
