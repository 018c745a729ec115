// The connection to the shared store (Redis or Valkey), through node-redis (@redis/client): the
// client Redis maintains itself, which pipelines every command issued in one turn of the event loop
// onto the socket together (so one handshake's commands cost one round trip, and a turn's
// handshakes share it), reconnects with a strategy we give it, speaks TLS for rediss://, and can
// refuse commands while disconnected instead of queueing them.
//
// Bad days: commands are refused at once while the store is down (no offline queue, and the queue
// of commands in flight is bounded), and a command without an answer in STATE_TIMEOUT_MS fails;
// the callers then apply their fallback. Reconnects back off from 100 ms to 10 s with jitter.
// mtproxy_state_store_up, _errors_total and the latency figures come from figures().
import { readFile } from 'node:fs/promises';
import { createClient, type RedisClientType } from '@redis/client';
import { ConfigError } from '../config/errors.js';
import type { StateSettings } from '../config/state-settings.js';
import type { Logger } from '../log/logger.js';
import { throttled } from '../log/throttle.js';

const MAX_IN_FLIGHT = 20_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;

export interface StoreFigures {
  readonly up: boolean;
  readonly errors: number;
  readonly commands: number;
  /** Sum of round-trip times of answered commands, seconds. */
  readonly latencySeconds: number;
  /** Commands that got no answer or an error, so that a fallback was applied. */
  readonly fallbacks: Readonly<Record<string, number>>;
}

/** A store command could not be answered (down, slow, refused); callers apply their fallback. */
export class StoreUnavailableError extends Error {
  readonly code = 'ERR_STATE_UNAVAILABLE';
  constructor(detail: string) {
    super(`state store unavailable: ${detail}`);
    this.name = 'StoreUnavailableError';
  }
}

export type Reply = string | number | null | Reply[];

export class StateStore {
  readonly settings: StateSettings;
  readonly #client: RedisClientType;
  readonly #log: Logger;
  #up = false;
  #errors = 0;
  #commands = 0;
  #latency = 0;
  readonly #fallbacks: Record<string, number> = {};
  readonly #logError: (message: string) => void;

  private constructor(settings: StateSettings, client: RedisClientType, log: Logger) {
    this.settings = settings;
    this.#client = client;
    this.#log = log;
    this.#logError = throttled(30_000, (message: string) =>
      log.error('state store error; protections use their fallbacks while it lasts', {
        store: settings.shownUrl,
        error: message,
        errors: this.#errors,
      }),
    );
  }

  /** Starts connecting in the background; the proxy serves (with fallbacks) until the store answers. */
  static async start(settings: StateSettings, log: Logger): Promise<StateStore> {
    let password: string | undefined;
    if (settings.passwordFile !== undefined) {
      try {
        password = (await readFile(settings.passwordFile, 'utf8')).trim();
      } catch (err) {
        throw new ConfigError(
          'STATE_PASSWORD_FILE',
          `cannot read ${settings.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
          'Mount the Secret holding the password there',
        );
      }
    }
    const client = createClient({
      url: settings.url,
      ...(password === undefined ? {} : { password }),
      disableOfflineQueue: true,
      commandsQueueMaxLength: MAX_IN_FLIGHT,
      socket: {
        connectTimeout: Math.max(1000, settings.timeoutMs * 4),
        reconnectStrategy: (retries: number) =>
          Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(retries, 10)) * (0.5 + Math.random() / 2),
      },
    }) as RedisClientType;
    const store = new StateStore(settings, client, log);
    client.on('error', (err: Error) => {
      store.#errors++;
      store.#logError(redactUrl(err.message));
    });
    client.on('ready', () => {
      store.#up = true;
      log.info('state store connected', { store: settings.shownUrl });
    });
    client.on('end', () => {
      store.#up = false;
    });
    client.on('reconnecting', () => {
      if (store.#up) log.warn('state store connection lost; reconnecting', { store: settings.shownUrl });
      store.#up = false;
    });
    // The first connection may fail too; the reconnect strategy keeps trying.
    client.connect().catch((err: Error) => store.#logError(redactUrl(err.message)));
    return store;
  }

  get up(): boolean {
    return this.#up && this.#client.isReady;
  }

  /** Runs one command; rejects with StoreUnavailableError when down, failing or slow. */
  async command(args: readonly (string | number)[]): Promise<Reply> {
    if (!this.up) throw new StoreUnavailableError('not connected');
    const started = performance.now();
    try {
      const reply = (await this.#client.sendCommand(
        args.map((a) => String(a)),
        { timeout: this.settings.timeoutMs, rejectInFlight: true } as Parameters<
          RedisClientType['sendCommand']
        >[1],
      )) as Reply;
      this.#commands++;
      this.#latency += (performance.now() - started) / 1000;
      return reply;
    } catch (err) {
      this.#errors++;
      this.#logError(redactUrl((err as Error).message));
      throw new StoreUnavailableError((err as Error).name);
    }
  }

  /** Counts a fallback applied by `protection` (replay, limits, quota). */
  fellBack(protection: string): void {
    this.#fallbacks[protection] = (this.#fallbacks[protection] ?? 0) + 1;
  }

  figures(): StoreFigures {
    return {
      up: this.up,
      errors: this.#errors,
      commands: this.#commands,
      latencySeconds: this.#latency,
      fallbacks: { ...this.#fallbacks },
    };
  }

  key(...parts: readonly string[]): string {
    return `${this.settings.prefix}${parts.join(':')}`;
  }

  async close(): Promise<void> {
    try {
      if (this.#client.isOpen) await this.#client.close();
    } catch {
      this.#client.destroy();
    }
    this.#log.debug('state store closed');
  }
}

/** Error messages of the client may quote the URL; never let a password through. */
function redactUrl(message: string): string {
  return message.replace(/(rediss?:\/\/)[^@/\s]*@/g, '$1');
}
