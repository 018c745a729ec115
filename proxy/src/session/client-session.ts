// One client connection from accept to the hand-over to an upstream, as a thin socket driver
// around the handshake state machine (handshake.ts): it feeds the machine what the socket and the
// timers say and runs what the machine decides. It owns the socket, the deadlines, the replay
// cache's Promise, the mask relay, the hand-over to the Upstream (ports.ts) and the accounting of
// how the connection ended. Once the client is accepted nothing of the handshake stays: the
// machine, its buffers and the hello are dropped, and only the ClientLink lives on.

import type { Socket } from 'node:net';
import { RecordPacer } from '../fake-tls/record-pacer.js';
import { RecordSchedule, scheduleForSite } from '../fake-tls/record-schedule.js';
import { wrapRecords } from '../fake-tls/records.js';
import type { RandomSource } from '../protocol/obfuscated2.js';
import type { CloseReason, HandshakeFailure, RefusalReason, SessionObserver } from './events.js';
import {
  type AcceptAction,
  Handshake,
  type HandshakeAction,
  type HandshakeEvent,
  type HandshakeRules,
  holdDelayMs,
} from './handshake.js';
import type { ClientMode, FakeTlsPolicy, ProxyProtocolSetting } from './policy.js';
import type {
  ClientLink,
  MaskRelay,
  PeerAddress,
  ReplayGuard,
  ReplayOutcome,
  SessionHooks,
  TrialThrottle,
  UnidentifiedCap,
  Upstream,
  UserTable,
} from './ports.js';
import { SocketOwner } from './socket-owner.js';

export interface SessionDeps {
  /** Read at each handshake, so a reload applies to new connections only. */
  readonly users: () => UserTable;
  readonly modes: ReadonlySet<ClientMode>;
  /** Present when fake TLS is on (`tls` in modes). */
  readonly fakeTls: FakeTlsPolicy | undefined;
  readonly proxyProtocol: ProxyProtocolSetting;
  readonly replay: ReplayGuard;
  /** Per-address limit: a release function when the peer may connect, undefined when it may not. */
  readonly admit: (peer: PeerAddress) => (() => void) | undefined;
  /** Undefined: failed connections are held and closed instead. */
  readonly mask: MaskRelay | undefined;
  readonly upstream: Upstream;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly random: RandomSource;
  readonly observer: SessionObserver;
  /** Per-source budget of failed handshakes, checked before any crypto; undefined: none. */
  readonly throttle?: TrialThrottle;
  /** Bound on this worker's handshakes not identified yet; undefined: none. */
  readonly unidentified?: UnidentifiedCap;
  /**
   * With masking on: a connection still unidentified this long after it was accepted (silent, or
   * a partial handshake) goes to the mask host now, so the mask site's own timeouts run from about
   * the moment a direct connection to it would have started. Default 1000 ms.
   */
  readonly unidentifiedDeadlineMs?: number;
  /** Debug log of failed handshakes, with the client's real address. */
  readonly onFailure?: (peer: PeerAddress | undefined, reason: HandshakeFailure) => void;
}

/** The connection handler for a worker: the handshake rules are built once, not per client. */
export function sessionServer(deps: SessionDeps): (client: Socket) => void {
  const upstream = deps.upstream;
  const rules: HandshakeRules = {
    users: deps.users,
    modes: deps.modes,
    fakeTls: deps.fakeTls,
    proxyProtocol: deps.proxyProtocol,
    throttle: deps.throttle,
    canServe: (dc) => upstream.canServe(dc),
    masking: deps.mask !== undefined,
    random: deps.random,
    handshakeTimeoutMs: deps.handshakeTimeoutMs,
  };
  return (client) => new ClientSession(client, deps, rules).start();
}

/**
 * Where the connection is, as far as the socket is concerned. The handshake's own stages are the
 * machine's business; after it, the driver needs only these.
 */
type Phase =
  | 'handshake' // the machine decides
  | 'connecting' // handed to the upstream, not established yet
  | 'relaying'
  | 'masked'
  | 'holding';

const TIMEOUT: HandshakeEvent = { kind: 'timeout' };
const HALF_CLOSED: HandshakeEvent = { kind: 'half-closed' };
const EVICTED: HandshakeEvent = { kind: 'evicted' };

/** One reason for every ended session: abort() without one builds a DOMException each time. */
const SESSION_OVER = new Error('session over');

const identity = (chunk: Buffer): Buffer => chunk;

/** Fake TLS after the handshake: the client's records in, records sized (and paced) like the site's out. */
function tlsFraming(
  client: Socket,
  records: NonNullable<AcceptAction['records']>,
  sni: string | undefined,
  policy: FakeTlsPolicy | undefined,
  random: RandomSource,
): Pick<ClientLink, 'unwrap' | 'wrap'> {
  const site = policy?.profile?.(sni);
  const schedule =
    policy?.recordSizes === 'off' ? undefined : new RecordSchedule(scheduleForSite(site?.response?.records));
  const frame =
    schedule === undefined ? (chunk: Buffer) => wrapRecords(chunk) : (chunk: Buffer) => schedule.wrap(chunk);
  // TLS_RECORD_TIMING=site with a site whose measured answer had gaps to follow.
  const gaps = policy?.recordTiming === 'site' ? site?.response?.gapsMs : undefined;
  const pacer = gaps === undefined ? undefined : new RecordPacer(client, gaps, random);
  return {
    unwrap: (chunk) => records.push(chunk),
    wrap:
      pacer === undefined || !pacer.active
        ? frame
        : (chunk) => {
            pacer.beforeWrite();
            return frame(chunk);
          },
  };
}

/**
 * The session's socket listeners and timer callbacks are shared by every connection (an idle
 * connection costs what it keeps; socket-owner.ts), and the session itself is the upstream's
 * SessionHooks: no closure is made per connection.
 */
const SESSION = new SocketOwner<ClientSession>('client session');
const UPSTREAM = new SocketOwner<ClientSession>('client session upstream');
const onClientError = SESSION.listener((session) => session.socketError('client'));
const onClientClose = SESSION.listener((session) => session.socketClosed('client'));
const onClientEnd = SESSION.listener((session) => session.halfClosed());
const onClientData = SESSION.listener((session, chunk: Buffer) => session.bytes(chunk));
const onIdle = SESSION.listener((session) => session.finish('idle'));
const onUpstreamError = UPSTREAM.listener((session) => session.socketError('upstream'));
const onUpstreamClose = UPSTREAM.listener((session) => session.socketClosed('upstream'));
const onTimer = (session: ClientSession): void => session.timeout();
const onHoldOver = (session: ClientSession): void => session.finish('handshake-failed');

class ClientSession implements SessionHooks {
  readonly #client: Socket;
  readonly #deps: SessionDeps;
  /** Until the handshake is decided; dropped with everything it read. */
  #machine: Handshake | undefined;
  #phase: Phase = 'handshake';
  #peer: PeerAddress | undefined;
  #release: (() => void) | undefined;
  #upstream: Socket | undefined;
  #abort: AbortController | undefined;
  /** What upstreams asked to run when the session ends (SessionHooks.onEnd). */
  #onEnd: (() => void) | undefined;
  /** The handshake deadline; once the connection is held, the moment it is closed. */
  #timer: NodeJS.Timeout | undefined;
  #unidentifiedTimer: NodeJS.Timeout | undefined;
  #leaveUnidentified: (() => void) | undefined;
  #reading = false;
  #failed = false;
  #finished = false;
  #errorSide: 'client' | 'upstream' | undefined;

  constructor(client: Socket, deps: SessionDeps, rules: HandshakeRules) {
    this.#client = client;
    this.#deps = deps;
    this.#machine = new Handshake(rules, this.#socketPeer());
  }

  start(): void {
    const client = this.#client;
    const deps = this.#deps;
    client.setNoDelay(true);
    SESSION.own(client, this);
    client.on('error', onClientError);
    client.on('close', onClientClose);
    client.on('end', onClientEnd);
    this.#timer = setTimeout(onTimer, deps.handshakeTimeoutMs, this);
    this.#run(this.#machine!.start());
    if (this.#finished) return; // refused by the per-address limit
    this.#leaveUnidentified = deps.unidentified?.enter(() => {
      this.#leaveUnidentified = undefined;
      this.#feed(EVICTED);
    });
    if (deps.mask !== undefined) {
      const deadline = Math.min(deps.unidentifiedDeadlineMs ?? 1000, deps.handshakeTimeoutMs);
      this.#unidentifiedTimer = setTimeout(onTimer, deadline, this);
    }
  }

  // --- the machine's actions -------------------------------------------------------------------

  #feed(event: HandshakeEvent): void {
    const machine = this.#machine;
    if (machine !== undefined && !this.#finished) this.#run(machine.step(event));
  }

  #run(actions: readonly HandshakeAction[]): void {
    for (const action of actions) {
      if (this.#finished) return;
      this.#do(action);
    }
  }

  #do(action: HandshakeAction): void {
    switch (action.type) {
      case 'need-more':
        this.#read(true);
        return;
      case 'admit':
        this.#peer = action.peer;
        this.#release = this.#deps.admit(action.peer);
        this.#feed({ kind: 'admitted', ok: this.#release !== undefined });
        return;
      case 'identified':
        this.#identified();
        return;
      case 'check-replay':
        this.#checkReplay(action.key);
        return;
      case 'write':
        this.#client.write(action.bytes);
        return;
      case 'accept':
        this.#accept(action);
        return;
      case 'refuse':
        this.#refuse(action.reason);
        return;
      case 'fail':
        this.#recordFailure(action.reason);
        return;
      case 'mask':
        this.#mask(this.#deps.mask!, action.replay);
        return;
      case 'hold':
        this.#hold(action.ms);
        return;
      case 'close':
        this.#finish(action.reason);
        return;
    }
  }

  #read(on: boolean): void {
    if (on && !this.#reading) {
      this.#client.on('data', onClientData);
      this.#client.resume();
    } else if (!on && this.#reading) {
      this.#client.pause();
      this.#client.off('data', onClientData);
    }
    this.#reading = on;
  }

  /** The client's bytes while the driver reads them (the handshake, or holding). */
  bytes(chunk: Buffer): void {
    // Holding: read and discard.
    if (this.#phase === 'handshake') this.#feed({ kind: 'bytes', chunk });
  }

  socketError(side: 'client' | 'upstream'): void {
    this.#errorSide ??= side;
  }

  socketClosed(side: 'client' | 'upstream'): void {
    this.#finish(this.#errorSide === side ? `${side}-error` : `${side}-closed`);
  }

  /**
   * The client is paused while the shared replay cache answers. A guard that fails instead of
   * answering is treated like one that never answered: fail closed.
   */
  #checkReplay(key: Buffer): void {
    this.#read(false);
    let answer: Promise<ReplayOutcome>;
    try {
      answer = Promise.resolve(this.#deps.replay.check(key));
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (outcome) => this.#feed({ kind: 'replay', outcome }),
      () => this.#feed({ kind: 'replay', outcome: 'no-answer' }),
    );
  }

  /** The handshake has been decided one way or the other: no longer counted as unidentified. */
  #identified(): void {
    clearTimeout(this.#unidentifiedTimer);
    this.#unidentifiedTimer = undefined;
    this.#leaveUnidentified?.();
    this.#leaveUnidentified = undefined;
  }

  #socketPeer(): PeerAddress {
    const c = this.#client;
    return {
      address: c.remoteAddress ?? '',
      port: c.remotePort ?? 0,
      localAddress: c.localAddress ?? '',
      localPort: c.localPort ?? 0,
    };
  }

  // --- hand-over -------------------------------------------------------------------------------

  #accept(accepted: AcceptAction): void {
    this.#read(false);
    this.#phase = 'connecting';
    this.#machine = undefined;
    const deps = this.#deps;
    const { header, user, framing } = accepted;
    deps.observer.handshakeOk(user, header.transport, header.dc, framing);
    const records = accepted.records;
    const framed =
      records === undefined
        ? { unwrap: identity, wrap: identity }
        : tlsFraming(this.#client, records, accepted.sni, deps.fakeTls, deps.random);
    const link: ClientLink = {
      socket: this.#client,
      header,
      framing,
      unwrap: framed.unwrap,
      wrap: framed.wrap,
      rest: accepted.rest,
      peer: this.#peer ?? this.#socketPeer(),
      user,
    };
    deps.upstream.start(link, this);
  }

  // --- SessionHooks, for the upstream ----------------------------------------------------------

  /** Made when an upstream first asks, dropped once traffic flows: no controller per idle relay. */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    if (this.#finished) this.#abort.abort(SESSION_OVER);
    return this.#abort.signal;
  }

  get ended(): boolean {
    return this.#finished;
  }

  onEnd(listener: () => void): void {
    if (this.#finished) {
      listener();
      return;
    }
    const before = this.#onEnd;
    this.#onEnd =
      before === undefined
        ? listener
        : () => {
            before();
            listener();
          };
  }

  get observer(): SessionObserver {
    return this.#deps.observer;
  }

  get random(): RandomSource {
    return this.#deps.random;
  }

  finish(reason: CloseReason): void {
    this.#finish(reason);
  }

  established(upstream: Socket | undefined): void {
    if (this.#finished) {
      upstream?.destroy();
      return;
    }
    this.#phase = 'relaying';
    // Dialling and binding are over; what lasts the relay's life uses onEnd.
    this.#abort = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (upstream !== undefined) {
      this.#upstream = upstream;
      UPSTREAM.own(upstream, this);
      upstream.on('error', onUpstreamError);
      upstream.on('close', onUpstreamClose);
    }
    this.#client.setTimeout(this.#deps.idleTimeoutMs);
    this.#client.on('timeout', onIdle);
  }

  // --- failures --------------------------------------------------------------------------------

  #refuse(reason: RefusalReason): void {
    this.#deps.observer.refused(reason);
    this.#finish('refused');
  }

  #recordFailure(reason: HandshakeFailure): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#deps.observer.handshakeFailed(reason);
    this.#deps.onFailure?.(this.#peer, reason);
  }

  #mask(mask: MaskRelay, replay: readonly Buffer[]): void {
    this.#read(false);
    this.#phase = 'masked';
    this.#machine = undefined;
    clearTimeout(this.#timer);
    const holdInstead = (): void => {
      if (!this.#finished) this.#hold(holdDelayMs(this.#deps.handshakeTimeoutMs, this.#deps.random));
    };
    mask.relay(this.#client, replay).then((outcome) => {
      if (outcome === 'relaying') {
        if (!this.#finished) this.#deps.observer.masked();
        return;
      }
      this.#deps.observer.maskFailed(outcome);
      holdInstead();
    }, holdInstead);
  }

  /** Say nothing, read and discard, and close after `ms` (handshake.ts holdDelayMs). */
  #hold(ms: number): void {
    this.#phase = 'holding';
    this.#machine = undefined;
    clearTimeout(this.#timer);
    this.#read(true);
    this.#timer = setTimeout(onHoldOver, ms, this);
  }

  /** The handshake deadline, or the deadline for staying unidentified. */
  timeout(): void {
    switch (this.#phase) {
      case 'handshake':
        this.#feed(TIMEOUT);
        return;
      case 'connecting':
        if (this.#finished) return;
        this.#recordFailure('timeout');
        this.#finish('handshake-failed');
        return;
      default:
        return; // established, masked or held: other clocks run
    }
  }

  /** The client half-closed its side. */
  halfClosed(): void {
    switch (this.#phase) {
      case 'handshake':
        this.#feed(HALF_CLOSED);
        return;
      case 'masked':
        return; // the mask relay forwards it
      case 'holding':
        this.#finish('handshake-failed');
        return;
      default:
        this.#finish('client-closed');
    }
  }

  #finish(reason: CloseReason): void {
    if (this.#finished) return;
    const phase = this.#phase;
    // A refusal (our limits, or the user gate's before any upstream) is not a failed handshake.
    const refused = reason === 'refused';
    const counted = phase === 'relaying' || refused || phase === 'masked' || this.#failed;
    if (!counted && (reason === 'client-closed' || reason === 'client-error'))
      this.#recordFailure('client-closed');
    this.#finished = true;
    this.#machine = undefined;
    this.#identified();
    clearTimeout(this.#timer);
    this.#abort?.abort(SESSION_OVER);
    this.#abort = undefined;
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    onEnd?.();
    this.#client.destroy();
    this.#upstream?.destroy();
    this.#release?.();
    this.#release = undefined;
    const established = phase === 'relaying';
    const final: CloseReason = established
      ? reason
      : refused
        ? 'refused'
        : phase === 'masked'
          ? 'masked'
          : 'handshake-failed';
    this.#deps.observer.closed(final, established);
  }
}
