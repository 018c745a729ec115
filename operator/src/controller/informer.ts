// A watch-backed cache that keeps going. client-node's informer relists after 410 Gone and
// reconnects after its own 30 s inactivity timeout, but stops for good on any other error (an API
// server restart, a 403, a dropped connection) and can go silent without an error at all
// (client-node #596, #958). This wrapper restarts it with jittered exponential backoff after an
// error, and a watchdog replaces it (full relist) when nothing - no event, no reconnect - has been
// heard for stallTimeoutMs. The previous cache keeps answering until the new one has listed.
import {
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from '../logging.js';
import type { KubeList, KubeObject } from './kube-client.js';
import { errorMessage } from './redact.js';

export type ChangeKind = 'add' | 'update' | 'delete';

export interface ResilientInformerOptions<T extends KubeObject> {
  readonly kubeConfig: KubeConfig;
  /** What to watch, e.g. /apis/apps/v1/namespaces/x/deployments. */
  readonly path: string;
  readonly list: () => Promise<KubeList<T>>;
  readonly labelSelector?: string | undefined;
  /** For logs and metrics: "deployments", "mtproxies", ... */
  readonly resource: string;
  readonly onChange: (obj: T, kind: ChangeKind) => void;
  readonly log: Logger;
  readonly onRestart?: (cause: 'error' | 'stall') => void;
  /** A successful list after an error; the argument says whether it is the first one. */
  readonly onSynced?: (first: boolean) => void;
  readonly stallTimeoutMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Builds the underlying informer; tests inject a fake. */
  readonly factory?: InformerFactory;
}

/**
 * client-node types metadata timestamps as Date, but watches hand out plain JSON (strings); this
 * module keeps the informer untyped and gives callers their own JSON types.
 */
type RawInformer = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export type InformerFactory = (
  kubeConfig: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<KubernetesObject>>,
  labelSelector?: string,
) => RawInformer;

const defaultFactory: InformerFactory = (kc, path, list, selector) => makeInformer(kc, path, list, selector);

export class ResilientInformer<T extends KubeObject> {
  #current: RawInformer | undefined;
  #generation = 0;
  #synced = false;
  #stopped = true;
  #lastActivity = Date.now();
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  readonly #stallTimeoutMs: number;

  constructor(private readonly options: ResilientInformerOptions<T>) {
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 180_000;
  }

  /** Whether the cache has listed at least once. */
  get synced(): boolean {
    return this.#synced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#current?.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): readonly T[] {
    return (this.#current?.list(namespace) ?? []) as unknown as readonly T[];
  }

  /** Resolves after the first list (or the first failure, after which retries go on). */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#lastActivity = Date.now();
    const check = Math.max(1000, Math.min(30_000, this.#stallTimeoutMs / 3));
    this.#watchdog = setInterval(() => this.#checkStall(), check);
    this.#watchdog.unref();
    await this.#launch();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#watchdog);
    clearTimeout(this.#retryTimer);
    this.#generation++;
    const current = this.#current;
    await current?.stop();
  }

  /** Replaces the informer now (full relist), as the watchdog does. */
  async restart(cause: 'error' | 'stall'): Promise<void> {
    this.options.onRestart?.(cause);
    await this.#launch();
  }

  #checkStall(): void {
    if (this.#stopped) return;
    const silentFor = Date.now() - this.#lastActivity;
    if (silentFor < this.#stallTimeoutMs) return;
    this.options.log.warn('watch silent for too long; relisting', {
      resource: this.options.resource,
      silentMs: silentFor,
    });
    this.#lastActivity = Date.now();
    void this.restart('stall');
  }

  async #launch(): Promise<void> {
    clearTimeout(this.#retryTimer);
    const generation = ++this.#generation;
    const o = this.options;
    const factory = o.factory ?? defaultFactory;
    const list = o.list as unknown as () => Promise<KubernetesListObject<KubernetesObject>>;
    const informer = factory(o.kubeConfig, o.path, list, o.labelSelector);
    let failed = false;
    const live = (): boolean => generation === this.#generation && !this.#stopped;
    const touch = (): void => {
      if (live()) this.#lastActivity = Date.now();
    };
    for (const kind of ['add', 'update', 'delete'] as const) {
      informer.on(kind, (obj: KubernetesObject) => {
        touch();
        // Events of a replaced informer would only repeat what the new one lists.
        if (live() && this.#current === informer) o.onChange(obj as T, kind);
      });
    }
    informer.on('connect', touch);
    informer.on('error', (err?: unknown) => {
      failed = true;
      if (!live()) return;
      this.#scheduleRetry(err);
    });
    await informer.start();
    if (!live()) {
      await informer.stop();
      return;
    }
    if (failed) {
      // client-node already gave up on it; stop() makes sure no request lingers.
      await informer.stop();
      return;
    }
    const previous = this.#current;
    this.#current = informer;
    if (previous && previous !== informer) await previous.stop();
    this.#failures = 0;
    const first = !this.#synced;
    this.#synced = true;
    this.#lastActivity = Date.now();
    // The new cache may differ from what handlers saw: let them look at everything again.
    for (const obj of informer.list()) o.onChange(obj as T, 'update');
    o.onSynced?.(first);
  }

  #scheduleRetry(err: unknown): void {
    const min = this.options.minBackoffMs ?? 1000;
    const max = this.options.maxBackoffMs ?? 60_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.#failures, 20)) * (0.8 + Math.random() * 0.4);
    this.#failures++;
    this.options.log.warn('watch failed; restarting', {
      resource: this.options.resource,
      error: errorMessage(err),
      retryInMs: Math.round(delay),
    });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (this.#stopped) return;
      void this.restart('error');
    }, delay);
    this.#retryTimer.unref();
  }
}
