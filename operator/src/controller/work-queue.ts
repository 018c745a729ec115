// A de-duplicating, rate-limited work queue of keys (client-go's workqueue semantics, which
// client-node does not have):
//   - a key waits in the queue at most once, however often it is added;
//   - a key being processed is never handed to a second worker; adding it meanwhile marks it
//     dirty and it comes back once done() is called;
//   - addAfter() schedules work (the daily roll), addRateLimited() retries with a per-key
//     exponential backoff bounded by an overall token bucket; forget() ends the backoff.

export interface RateLimiter<K> {
  /** How long to wait before the next retry of `key`; counts a failure. */
  when(key: K): number;
  forget(key: K): void;
  retries(key: K): number;
}

/** Per key: base * 2^failures, capped (client-go: 5 ms .. 1000 s). */
export class ExponentialBackoff<K> implements RateLimiter<K> {
  readonly #failures = new Map<K, number>();
  constructor(
    readonly baseMs = 500,
    readonly maxMs = 300_000,
  ) {}

  when(key: K): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(n, 40));
  }

  forget(key: K): void {
    this.#failures.delete(key);
  }

  retries(key: K): number {
    return this.#failures.get(key) ?? 0;
  }
}

/** An overall token bucket: `qps` retries a second on average, bursts of `burst`. */
export class TokenBucket<K> implements RateLimiter<K> {
  #tokens: number;
  #last: number;
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  when(_key: K): number {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.qps);
    this.#last = t;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.qps) * 1000;
  }

  forget(_key: K): void {}

  retries(_key: K): number {
    return 0;
  }
}

/** The longest wait any of the limiters asks for (client-go's MaxOfRateLimiter). */
export class MaxOf<K> implements RateLimiter<K> {
  readonly #limiters: RateLimiter<K>[];
  constructor(...limiters: RateLimiter<K>[]) {
    this.#limiters = limiters;
  }
  when(key: K): number {
    return Math.max(...this.#limiters.map((l) => l.when(key)));
  }
  forget(key: K): void {
    for (const l of this.#limiters) l.forget(key);
  }
  retries(key: K): number {
    return Math.max(...this.#limiters.map((l) => l.retries(key)));
  }
}

export const defaultRateLimiter = <K>(): RateLimiter<K> =>
  new MaxOf<K>(new ExponentialBackoff<K>(500, 300_000), new TokenBucket<K>(10, 100));

export interface QueueObserver {
  added?(): void;
  retried?(): void;
  depth?(n: number): void;
}

export class WorkQueue<K> {
  readonly #queue: K[] = [];
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #timers = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: ((key: K | undefined) => void)[] = [];
  readonly #limiter: RateLimiter<K>;
  readonly #observer: QueueObserver;
  #shuttingDown = false;

  constructor(options: { rateLimiter?: RateLimiter<K>; observer?: QueueObserver } = {}) {
    this.#limiter = options.rateLimiter ?? defaultRateLimiter<K>();
    this.#observer = options.observer ?? {};
  }

  get length(): number {
    return this.#queue.length;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#observer.added?.();
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  /** Adds `key` after `ms`; of several pending delays for one key the earliest wins. */
  addAfter(key: K, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Retry after the backoff for this key; returns the delay chosen. */
  addRateLimited(key: K): number {
    const delay = this.#limiter.when(key);
    this.#observer.retried?.();
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: K): void {
    this.#limiter.forget(key);
  }

  retries(key: K): number {
    return this.#limiter.retries(key);
  }

  /** The next key to process, or undefined once the queue shuts down. Call done(key) after. */
  get(): Promise<K | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) return Promise.resolve(this.#take(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) this.#push(key);
  }

  /** Stops handing out keys; pending get() calls resolve with undefined. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  #take(key: K): K {
    this.#dirty.delete(key);
    this.#processing.add(key);
    this.#observer.depth?.(this.#queue.length);
    return key;
  }

  #push(key: K): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter(this.#take(key));
      return;
    }
    this.#queue.push(key);
    this.#observer.depth?.(this.#queue.length);
  }
}
