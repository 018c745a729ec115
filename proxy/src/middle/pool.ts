// The middle-end connections of one worker process (§6.10). For every target (host:port) of the
// current config it keeps a few RPC connections ready, reconnecting with exponential backoff and
// jitter. A new client gets a random target of its DC's cluster (the default cluster for unknown
// ids) and the least loaded ready connection there, and stays bound to it for life. A new config
// sends new clients to the new targets; clients of targets that left the config keep their
// connection, which is closed once its last client has gone.
//
// Sizing: every worker holds its own pool, so a target sees WORKERS x minConnections connections.
// The official proxy keeps 4..8 per target per worker; with one connection multiplexing hundreds
// of clients, 2 per target per worker (growing to 4 under load) is plenty and spares the
// middle-ends, which count connections per proxy.
import { randomBytes } from 'node:crypto';
import type { RandomSource } from '../protocol/obfuscated2.js';
import { REAL_SCHEDULER, type Scheduler } from '../timers/scheduler.js';
import { type HostPort, type MiddleProxyConfig, targetsForDc } from './codec/proxy-config.js';
import type { ConnId, ProxyReqHeader } from './codec/rpc-proxy-req.js';
import {
  type ConnectionAddresses,
  type MiddleClientHandler,
  type MiddleCloseReason,
  type MiddleConnectionOptions,
  MiddleProxyConnection,
} from './connection.js';
import { type MiddleObserver, NULL_MIDDLE_OBSERVER } from './events.js';

/** For logs: connections made, refused and lost. */
export interface MiddlePoolEvents {
  connected?(target: string, addresses: ConnectionAddresses, crc32c: boolean): void;
  connectFailed?(target: string, error: Error, retryInMs: number): void;
  /** A ready connection of a current target went away; its clients were closed. */
  lost?(target: string, error: Error | undefined, retryInMs: number): void;
}

export interface MiddlePoolOptions {
  readonly secret: Buffer;
  readonly config: MiddleProxyConfig;
  /** EXTERNAL_IP or the detected public IPv4 (see natClientAddress). */
  readonly externalIp?: string | undefined;
  /** Per target; default min(config min_connections, 2). */
  readonly minConnections?: number;
  /** Per target; default min(config max_connections, 4). */
  readonly maxConnections?: number;
  /** Open one more connection (up to max) when every ready one carries this many clients. Default 256. */
  readonly clientsPerConnection?: number;
  readonly connectTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** RPC_PING keepalive; default 60 s, 0 = off. */
  readonly pingIntervalMs?: number;
  /** Ask middle-ends for CRC32C frames (see MiddleConnectionOptions.crc32c); default false. */
  readonly crc32c?: boolean;
  /** First reconnect delay (default 500 ms), doubled per failure up to `backoffMaxMs` (default 30 s). */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** A connection that lived this long resets the backoff when lost (default 30 s). */
  readonly stableAfterMs?: number;
  readonly scheduler?: Scheduler;
  /** Milliseconds. */
  readonly now?: () => number;
  /** Uniform in [0, 1): target choice and jitter. */
  readonly random?: () => number;
  /** Conn ids and nonces. */
  readonly randomBytes?: RandomSource;
  readonly observer?: MiddleObserver;
  readonly events?: MiddlePoolEvents;
}

/** No middle-end connection could take the client (none ready in time, or no cluster for its DC). */
export class MiddleUnavailableError extends Error {
  readonly code = 'ERR_MIDDLE_UNAVAILABLE';
}

export interface TargetStats {
  readonly target: string;
  /** In the current config (else: left over from an older one, kept for its clients). */
  readonly declared: boolean;
  readonly ready: number;
  readonly connecting: number;
  readonly clients: number;
}

class Target {
  readonly connections: MiddleProxyConnection[] = [];
  connecting = 0;
  failures = 0;
  retry: unknown;
  declared = true;

  constructor(
    readonly key: string,
    readonly address: HostPort,
  ) {}

  get clients(): number {
    let n = 0;
    for (const c of this.connections) n += c.clientCount;
    return n;
  }
}

interface Waiter {
  readonly dc: number;
  readonly handler: MiddleClientHandler;
  readonly resolve: (b: MiddleBinding) => void;
  readonly reject: (e: Error) => void;
  timer: unknown;
}

function targetKey(t: HostPort): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/**
 * One client's place on a middle-end connection: its conn id and the way to send. It is also what
 * the connection calls for that client (it notes its own end, then passes each call on), so a
 * binding costs one object and no closures.
 */
export class MiddleBinding implements MiddleClientHandler {
  #released = false;

  constructor(
    readonly connId: ConnId,
    readonly connection: MiddleProxyConnection,
    private readonly handler: MiddleClientHandler,
    private readonly onRelease: (b: MiddleBinding, tellMiddleEnd: boolean) => void,
  ) {}

  answer(data: Buffer, flags: number): void {
    this.handler.answer(data, flags);
  }

  simpleAck(token: Buffer): void {
    this.handler.simpleAck(token);
  }

  drain(): void {
    this.handler.drain();
  }

  closed(reason: MiddleCloseReason): void {
    this.ended();
    this.handler.closed(reason);
  }

  get target(): string {
    return this.connection.target;
  }

  /** False while the connection's socket is congested (wait for the handler's `drain`). */
  get writable(): boolean {
    return this.connection.writable;
  }

  /** Still bound (not released, not closed by the middle-end, connection not lost). */
  get open(): boolean {
    return !this.#released && this.connection.ready && this.connection.has(this.connId);
  }

  /** RPC_PROXY_REQ with this client's header; false: congested, pause the client. */
  send(header: ProxyReqHeader, packet: Buffer, quickAck: boolean): boolean {
    return this.connection.send(this.connId, header, packet, quickAck);
  }

  /** The client is gone: RPC_CLOSE_CONN to the middle-end. Idempotent. */
  release(): void {
    this.#end(true);
  }

  /** @internal The middle-end or the connection ended it. */
  ended(): void {
    this.#end(false);
  }

  #end(tellMiddleEnd: boolean): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease(this, tellMiddleEnd);
  }
}

export class MiddleProxyPool {
  readonly #o: MiddlePoolOptions;
  readonly #scheduler: Scheduler;
  readonly #random: () => number;
  readonly #randomBytes: RandomSource;
  readonly #now: () => number;
  readonly #observer: MiddleObserver;
  readonly #targets = new Map<string, Target>();
  readonly #ownerOf = new Map<MiddleProxyConnection, Target>();
  readonly #bornAt = new Map<MiddleProxyConnection, number>();
  readonly #waiters = new Set<Waiter>();
  #config: MiddleProxyConfig;
  #secret: Buffer;
  #declared = 0;
  #closed = false;

  constructor(options: MiddlePoolOptions) {
    this.#o = options;
    this.#scheduler = options.scheduler ?? REAL_SCHEDULER;
    this.#random = options.random ?? Math.random;
    this.#randomBytes = options.randomBytes ?? randomBytes;
    this.#now = options.now ?? Date.now;
    this.#observer = options.observer ?? NULL_MIDDLE_OBSERVER;
    this.#config = options.config;
    this.#secret = options.secret;
  }

  /** Start connecting to every target of the config. */
  start(): void {
    this.applyConfig(this.#config);
  }

  get config(): MiddleProxyConfig {
    return this.#config;
  }

  /** Targets in the current config (official active_targets / total_declared_targets). */
  get declaredTargets(): number {
    return this.#declared;
  }

  /** Targets of the current config with at least one ready connection (ready_targets). */
  get readyTargets(): number {
    let n = 0;
    for (const t of this.#targets.values()) if (t.declared && t.connections.length > 0) n++;
    return n;
  }

  /** Targets left from older configs, still carrying clients (inactive_targets). */
  get inactiveTargets(): number {
    let n = 0;
    for (const t of this.#targets.values()) if (!t.declared) n++;
    return n;
  }

  get readyConnections(): number {
    return this.#ownerOf.size;
  }

  get boundClients(): number {
    let n = 0;
    for (const t of this.#targets.values()) n += t.clients;
    return n;
  }

  targetStats(): TargetStats[] {
    return [...this.#targets.values()].map((t) => ({
      target: t.key,
      declared: t.declared,
      ready: t.connections.length,
      connecting: t.connecting,
      clients: t.clients,
    }));
  }

  /** A new proxy secret: used by connections opened from now on. */
  applySecret(secret: Buffer): void {
    this.#secret = secret;
  }

  /** New clients go to the new targets; clients of removed targets stay until they leave. */
  applyConfig(config: MiddleProxyConfig): void {
    if (this.#closed) return;
    this.#config = config;
    const wanted = new Map<string, HostPort>();
    for (const cluster of config.targets.values()) for (const t of cluster) wanted.set(targetKey(t), t);
    this.#declared = wanted.size;
    for (const t of this.#targets.values()) {
      if (!wanted.has(t.key)) {
        t.declared = false;
        this.#retireIdle(t);
      }
    }
    for (const [key, address] of wanted) {
      let t = this.#targets.get(key);
      if (t === undefined) {
        t = new Target(key, address);
        this.#targets.set(key, t);
      }
      t.declared = true;
      this.#maintain(t);
    }
    this.#serveWaiters();
  }

  /** Bind a client of `dc` to a ready connection now, or undefined if there is none. */
  bind(dc: number, handler: MiddleClientHandler): MiddleBinding | undefined {
    if (this.#closed) return undefined;
    const cluster = targetsForDc(this.#config, dc);
    if (cluster === undefined || cluster.length === 0) return undefined;
    const first = Math.floor(this.#random() * cluster.length);
    for (let i = 0; i < cluster.length; i++) {
      const t = this.#targets.get(targetKey(cluster[(first + i) % cluster.length]!));
      const connection = t && this.#leastLoaded(t);
      if (t && connection) return this.#bindTo(t, connection, handler);
    }
    return undefined;
  }

  /** `bind`, waiting up to `timeoutMs` for a connection of the cluster to become ready. */
  acquire(dc: number, handler: MiddleClientHandler, timeoutMs: number): Promise<MiddleBinding> {
    const now = this.bind(dc, handler);
    if (now) return Promise.resolve(now);
    if (this.#closed || targetsForDc(this.#config, dc) === undefined) {
      return Promise.reject(new MiddleUnavailableError(`no middle proxy is configured for DC ${dc}`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { dc, handler, resolve, reject, timer: undefined };
      waiter.timer = this.#scheduler.setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new MiddleUnavailableError(`no middle proxy for DC ${dc} became ready within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Close every connection (their clients are told) and stop reconnecting. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters) {
      this.#scheduler.clearTimeout(w.timer);
      w.reject(new MiddleUnavailableError('the middle proxy pool is closed'));
    }
    this.#waiters.clear();
    for (const t of this.#targets.values()) {
      if (t.retry !== undefined) this.#scheduler.clearTimeout(t.retry);
      for (const c of [...t.connections]) c.close();
    }
    this.#targets.clear();
  }

  #leastLoaded(t: Target): MiddleProxyConnection | undefined {
    let best: MiddleProxyConnection | undefined;
    for (const c of t.connections) {
      if (!c.ready) continue;
      if (
        best === undefined ||
        (c.writable && !best.writable) ||
        (c.writable === best.writable && c.clientCount < best.clientCount)
      ) {
        best = c;
      }
    }
    return best;
  }

  #bindTo(t: Target, connection: MiddleProxyConnection, handler: MiddleClientHandler): MiddleBinding {
    const connId = this.#newConnId(connection);
    const binding = new MiddleBinding(connId, connection, handler, (b, tell) => this.#released(t, b, tell));
    connection.bind(connId, binding);
    this.#observer.clientBound();
    this.#grow(t);
    return binding;
  }

  #newConnId(connection: MiddleProxyConnection): ConnId {
    for (let attempt = 0; attempt < 8; attempt++) {
      const id = this.#randomBytes(8).readBigUInt64LE(0);
      if (id !== 0n && !connection.has(id)) return id;
    }
    throw new Error('could not draw an unused conn id');
  }

  #released(t: Target, b: MiddleBinding, tellMiddleEnd: boolean): void {
    if (tellMiddleEnd) b.connection.unbind(b.connId);
    this.#observer.clientReleased();
    if (!t.declared) this.#retireIdle(t);
  }

  /** Keep at least `min` connections (ready or on their way) unless a reconnect is pending. */
  #maintain(t: Target): void {
    if (this.#closed || !t.declared || t.retry !== undefined) return;
    const min = this.#o.minConnections ?? Math.min(this.#config.minConnections, 2);
    for (let n = t.connections.length + t.connecting; n < min; n++) this.#connect(t);
  }

  /** One more connection when every ready one is busy or congested, up to `max`. */
  #grow(t: Target): void {
    if (this.#closed || !t.declared || t.retry !== undefined || t.connecting > 0) return;
    const max = this.#o.maxConnections ?? Math.min(this.#config.maxConnections, 4);
    if (t.connections.length >= max) return;
    const perConnection = this.#o.clientsPerConnection ?? 256;
    if (t.connections.every((c) => !c.writable || c.clientCount >= perConnection)) this.#connect(t);
  }

  #connect(t: Target): void {
    t.connecting++;
    const o = this.#o;
    const options: MiddleConnectionOptions = {
      target: t.address,
      secret: this.#secret,
      externalIp: o.externalIp,
      connectTimeoutMs: o.connectTimeoutMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      pingIntervalMs: o.pingIntervalMs ?? 60_000,
      crc32c: o.crc32c,
      random: this.#randomBytes,
      observer: this.#observer,
      onClosed: (c, error) => this.#lost(t, c, error),
    };
    MiddleProxyConnection.open(options).then(
      (c) => this.#opened(t, c),
      (error: Error) => this.#failed(t, error),
    );
  }

  #opened(t: Target, c: MiddleProxyConnection): void {
    t.connecting--;
    if (this.#closed || !t.declared) {
      c.close();
      if (!this.#closed) this.#retireIdle(t);
      return;
    }
    t.connections.push(c);
    this.#ownerOf.set(c, t);
    this.#bornAt.set(c, this.#now());
    this.#o.events?.connected?.(t.key, c.addresses!, c.crc32c);
    this.#serveWaiters();
  }

  #failed(t: Target, error: Error): void {
    t.connecting--;
    if (this.#closed) return;
    if (!t.declared) {
      this.#retireIdle(t);
      return;
    }
    t.failures++;
    const delay = this.#scheduleRetry(t);
    this.#o.events?.connectFailed?.(t.key, error, delay);
  }

  #lost(t: Target, c: MiddleProxyConnection, error: Error | undefined): void {
    const index = t.connections.indexOf(c);
    if (index >= 0) t.connections.splice(index, 1);
    this.#ownerOf.delete(c);
    const lived = this.#now() - (this.#bornAt.get(c) ?? 0);
    this.#bornAt.delete(c);
    if (this.#closed) return;
    if (!t.declared) {
      this.#retireIdle(t);
      return;
    }
    if (lived >= (this.#o.stableAfterMs ?? 30_000)) t.failures = 0;
    t.failures++;
    this.#o.events?.lost?.(t.key, error, this.#scheduleRetry(t));
  }

  /** Exponential backoff with jitter: a random delay in [d/2, d), d = initial x 2^(failures-1). */
  #scheduleRetry(t: Target): number {
    const initial = this.#o.backoffInitialMs ?? 500;
    const cap = this.#o.backoffMaxMs ?? 30_000;
    const full = Math.min(cap, initial * 2 ** Math.min(t.failures - 1, 30));
    const delay = Math.round(full / 2 + (this.#random() * full) / 2);
    if (t.retry !== undefined) return delay;
    t.retry = this.#scheduler.setTimeout(() => {
      t.retry = undefined;
      this.#maintain(t);
    }, delay);
    return delay;
  }

  /** A target no longer in the config: close connections without clients; forget it when empty. */
  #retireIdle(t: Target): void {
    for (const c of [...t.connections]) if (c.clientCount === 0) c.close();
    if (t.connections.length === 0 && t.connecting === 0 && this.#targets.get(t.key) === t) {
      if (t.retry !== undefined) this.#scheduler.clearTimeout(t.retry);
      this.#targets.delete(t.key);
    }
  }

  #serveWaiters(): void {
    for (const w of [...this.#waiters]) {
      const binding = this.bind(w.dc, w.handler);
      if (binding === undefined) continue;
      this.#waiters.delete(w);
      this.#scheduler.clearTimeout(w.timer);
      w.resolve(binding);
    }
  }
}
