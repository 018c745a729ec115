// Messages between the primary and its workers over the cluster IPC channel, as a registry: each
// feature declares its own message kinds (a type tag and a shape check) and registers handlers for
// them, so the process core never lists what features exist. On the wire a message is one JSON
// object `{ type, ...fields }`: buffers travel as hex, maps as entry lists.
import type { Logger } from '../log/logger.js';
import { throttled } from '../log/throttle.js';

const DROP_LOG_EVERY_MS = 60_000;

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

/** One field of a message: the check of what arrived, and (for the compiler only) its type. */
export interface Field<T> {
  readonly check: (value: unknown) => boolean;
  readonly __type?: T;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The fields a message may have; what arrives came from another process, so each is checked. */
export const field = {
  number: { check: (v) => typeof v === 'number' } as Field<number>,
  string: { check: (v) => typeof v === 'string' } as Field<string>,
  numbers: { check: (v) => Array.isArray(v) && v.every((n) => typeof n === 'number') } as Field<
    readonly number[]
  >,
  /** A list whose items the receiver trusts as `T` (our own process wrote them). */
  list: <T>(): Field<readonly T[]> => ({ check: Array.isArray }),
  /** An object, with an optional closer look. */
  object: <T>(check: (v: Record<string, unknown>) => boolean = () => true): Field<T> => ({
    check: (v) => isObject(v) && check(v),
  }),
  /** Anything, `undefined` included (JSON leaves undefined out): the receiver checks it. */
  any: <T>(): Field<T> => ({ check: () => true }),
};

type Fields = Readonly<Record<string, Field<unknown>>>;

/** The message a kind describes. */
export type MessageOf<K> = K extends MessageKind<infer T> ? T : never;

type FieldsOf<F extends Fields> = { readonly [K in keyof F]: F[K] extends Field<infer V> ? V : never };

/**
 * Declares a kind of message by its type tag and fields; `check` looks at the whole message once
 * each field passed. The message's type is inferred: `MessageOf<typeof KIND>`.
 */
export function messageKind<Type extends string, F extends Fields>(
  type: Type,
  fields: F & { readonly type?: never },
  check: (message: FieldsOf<F>) => boolean = () => true,
): MessageKind<{ readonly type: Type } & FieldsOf<F>> {
  const entries = Object.entries(fields);
  const valid = (m: Readonly<Record<string, unknown>>): boolean =>
    entries.every(([name, f]) => f.check(m[name])) && check(m as FieldsOf<F>);
  return { type, valid } as MessageKind<{ readonly type: Type } & FieldsOf<F>>;
}

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
  #onDrop: (reason: Dropped, type: string, error?: Error) => void = () => {};
  /** Messages dropped since start, by reason. */
  readonly dropped: Record<Dropped, number> = { unknown: 0, malformed: 0, failed: 0 };

  /** Logs dropped messages from now on, at most once a minute; `from` names the sender. */
  reportDrops(log: Logger, from: string): void {
    this.#onDrop = throttled(DROP_LOG_EVERY_MS, (reason: Dropped, type: string, error?: Error) =>
      log.warn(`message from ${from} dropped`, {
        reason,
        type,
        error: error?.message,
        dropped: { ...this.dropped },
      }),
    );
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
