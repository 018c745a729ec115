// Masking (docs/protocol.md §4.10, §2.6): a connection that fails the handshake is relayed byte for
// byte to a real web server (the mask host), the bytes already read first, so a prober sees that
// site and not a proxy. The relay is capped in bytes and time, and never points at this proxy
// itself: a mask target that resolves to one of our addresses and ports would make every failed
// connection open another one to us, forever (a known cause of 100% CPU in other proxies).
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { normalizeAddress } from '../protocol/addresses.js';
import type { MaskFailure } from '../session/events.js';
import type { MaskRelay } from '../session/ports.js';

export interface MaskTarget {
  readonly host: string;
  readonly port: number;
}

/** MASK_*: where connections that fail the handshake are relayed, and the caps of such a relay. */
export interface MaskSettings extends MaskTarget {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Masked relays open at once per worker. */
  readonly maxRelays: number;
}

/** Where this proxy can be reached: every address that reaches us, on any of our ports. */
export interface SelfEndpoints {
  readonly addresses: ReadonlySet<string>;
  readonly ports: ReadonlySet<number>;
}

function isLoopbackOrUnspecified(address: string): boolean {
  return address.startsWith('127.') || address === '0.0.0.0' || address === '::1' || address === '::';
}

/** True when connecting to `address`:`port` would reach this proxy's own listener. */
export function isSelfTarget(address: string, port: number, self: SelfEndpoints): boolean {
  if (!self.ports.has(port)) return false;
  const a = normalizeAddress(address);
  return isLoopbackOrUnspecified(a) || self.addresses.has(a);
}

/** The addresses of this machine's interfaces plus any given (the external IP behind NAT). */
export function localAddresses(extra: readonly string[] = []): Set<string> {
  const out = new Set<string>(extra.map(normalizeAddress));
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) out.add(normalizeAddress(info.address));
  }
  return out;
}

export type TargetCheck =
  | { readonly ok: true; readonly address: string }
  | { readonly ok: false; readonly reason: MaskFailure; readonly detail: string };

/**
 * Resolves the mask host (an IP literal is used as is, without any DNS query) and refuses it when
 * any of its addresses is us.
 */
export async function checkMaskTarget(target: MaskTarget, self: SelfEndpoints): Promise<TargetCheck> {
  let addresses: string[];
  if (isIP(target.host) !== 0) {
    addresses = [target.host];
  } else {
    try {
      addresses = (await lookup(target.host, { all: true })).map((a) => a.address);
    } catch (err) {
      return {
        ok: false,
        reason: 'unreachable',
        detail: `cannot resolve ${target.host}: ${(err as Error).message}`,
      };
    }
  }
  const mine = addresses.find((a) => isSelfTarget(a, target.port, self));
  if (mine !== undefined) {
    return {
      ok: false,
      reason: 'self',
      detail: `${target.host}:${target.port} resolves to ${mine}, an address of this proxy`,
    };
  }
  const first = addresses[0];
  if (first === undefined)
    return { ok: false, reason: 'unreachable', detail: `${target.host} has no address` };
  return { ok: true, address: first };
}

export interface MaskerOptions {
  readonly target: MaskTarget;
  /** Both directions together; the relay is closed past it. */
  readonly maxBytes: number;
  /** The relay's whole life. */
  readonly timeoutMs: number;
  /** Relays open at once; past it `relay` answers 'busy' (the caller holds the client instead). */
  readonly maxRelays?: number;
  readonly connectTimeoutMs: number;
  /** Our own endpoints, recomputed by the caller as interfaces change; checked at every connect. */
  readonly self: () => SelfEndpoints;
  /** How long a resolved mask address is reused. */
  readonly resolveCacheMs?: number;
  /** Told once per minute at most when the target is refused or unreachable. */
  readonly onProblem: (check: Extract<TargetCheck, { ok: false }>) => void;
}

export type MaskOutcome = 'relaying' | MaskFailure;

const DEFAULT_RESOLVE_CACHE_MS = 60_000;
const PROBLEM_LOG_INTERVAL_MS = 60_000;

export class Masker implements MaskRelay {
  readonly #options: MaskerOptions;
  #resolved: { check: TargetCheck; at: number } | undefined;
  #lastProblemAt = Number.NEGATIVE_INFINITY;
  #open = 0;

  constructor(options: MaskerOptions) {
    this.#options = options;
  }

  async #target(): Promise<TargetCheck> {
    const now = Date.now();
    const cached = this.#resolved;
    if (cached && now - cached.at < (this.#options.resolveCacheMs ?? DEFAULT_RESOLVE_CACHE_MS)) {
      return cached.check;
    }
    const check = await checkMaskTarget(this.#options.target, this.#options.self());
    this.#resolved = { check, at: now };
    return check;
  }

  #problem(check: Extract<TargetCheck, { ok: false }>): void {
    const now = Date.now();
    if (now - this.#lastProblemAt < PROBLEM_LOG_INTERVAL_MS) return;
    this.#lastProblemAt = now;
    this.#options.onProblem(check);
  }

  /**
   * Takes over `client` (paused, with no 'data' listener): connects to the mask host, sends it
   * `replay` (what the client sent so far), then relays both ways, half-closes included, until
   * either side closes or a cap is hit, and destroys both sockets. Resolves once relaying started,
   * or with the reason it could not; then the client is still the caller's.
   */
  async relay(client: Socket, replay: readonly Buffer[]): Promise<MaskOutcome> {
    // Each relay holds two descriptors for up to MASK_TIMEOUT: without a cap a flood of failed
    // handshakes would run the worker out of them.
    if (this.#open >= (this.#options.maxRelays ?? Number.POSITIVE_INFINITY)) return 'busy';
    this.#open++;
    let started = false;
    try {
      const outcome = await this.#relay(client, replay, () => {
        started = true;
      });
      return outcome;
    } finally {
      if (!started) this.#open--;
    }
  }

  /** Masked relays open now. */
  get open(): number {
    return this.#open;
  }

  async #relay(client: Socket, replay: readonly Buffer[], onStart: () => void): Promise<MaskOutcome> {
    const check = await this.#target();
    if (!check.ok) {
      this.#problem(check);
      return check.reason;
    }
    if (client.destroyed) return 'relaying';
    const mask = await this.#connect(check.address, client);
    if (mask === undefined) {
      if (client.destroyed) return 'relaying';
      this.#resolved = undefined;
      this.#problem({
        ok: false,
        reason: 'unreachable',
        detail: `no connection to ${this.#options.target.host}:${this.#options.target.port}`,
      });
      return 'unreachable';
    }
    onStart();
    this.#splice(client, mask, replay);
    return 'relaying';
  }

  #connect(address: string, client: Socket): Promise<Socket | undefined> {
    return new Promise((resolve) => {
      const socket = connect({
        host: address,
        port: this.#options.target.port,
        allowHalfOpen: true,
        noDelay: true,
      });
      const done = (result: Socket | undefined): void => {
        clearTimeout(timer);
        client.off('close', onClientClose);
        socket.off('error', onError);
        if (result === undefined) socket.destroy();
        resolve(result);
      };
      const onError = (): void => done(undefined);
      const onClientClose = (): void => done(undefined);
      const timer = setTimeout(onError, this.#options.connectTimeoutMs);
      socket.once('connect', () => done(socket));
      socket.once('error', onError);
      client.once('close', onClientClose);
    });
  }

  #splice(client: Socket, mask: Socket, replay: readonly Buffer[]): void {
    // The caps are drawn per relay between 1x and 2x the settings: a real site does not cut every
    // connection at one exact size or age, so neither may we (a prober could measure it).
    const jitter = (): number => 1 + Math.random();
    let budget = Math.floor(this.#options.maxBytes * jitter());
    let closed = false;
    const stop = (): void => {
      clearTimeout(timer);
      client.destroy();
      mask.destroy();
    };
    const onClosed = (): void => {
      if (closed || !client.destroyed || !mask.destroyed) return;
      closed = true;
      this.#open--;
    };
    client.once('close', onClosed);
    mask.once('close', onClosed);
    const timer = setTimeout(stop, this.#options.timeoutMs * jitter());
    timer.unref();
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        budget -= chunk.length;
        if (budget < 0) {
          stop();
          return;
        }
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => from.resume());
      from.on('end', () => to.end());
      // A side gone (closed or reset): let the other finish sending what it has, then close.
      from.on('close', () => {
        if (client.destroyed && mask.destroyed) clearTimeout(timer);
        else to.end();
      });
      from.on('error', () => {});
    };
    for (const chunk of replay) {
      budget -= chunk.length;
      mask.write(chunk);
    }
    forward(client, mask);
    forward(mask, client);
    // The client may have half-closed before we got here: its 'end' has already been emitted.
    if (client.readableEnded) mask.end();
    client.resume();
  }
}
