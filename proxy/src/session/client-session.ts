// One client connection from accept to the hand-over to an upstream:
//   [PROXY protocol header] -> fake TLS (ClientHello, ServerHello, records) or plain obfuscated2
//   -> the obfuscated2 header -> an authenticated ClientLink for the Upstream (ports.ts).
// A connection that fails before we answered anything is masked (relayed to the mask host) or,
// without a mask host, held and closed after a random delay; after our ServerHello it can only be
// held. Nothing the client sends can make this code throw.

import type { Socket } from 'node:net';
import type {
  HandshakeThrottle,
  TrialPlan,
  UnidentifiedHandshakes,
} from '../admission/handshake-throttle.js';
import type { ClientMode, ProxyProtocolSetting, UnknownSniAction } from '../config/config.js';
import {
  type AcceptedHello,
  buildServerHello,
  type ClockWindow,
  detectClientHello,
  type HelloFailureReason,
  MAX_HELLO_BUFFER,
  RECORD_HANDSHAKE,
  TlsRecordReader,
  validateClientHello,
  wrapRecords,
} from '../fake-tls/codec.js';
import { RecordPacer } from '../fake-tls/record-pacer.js';
import { RecordSchedule, scheduleForSite } from '../fake-tls/record-schedule.js';
import { answerLayout, type HelloKind, helloKind, type SiteProfile } from '../fake-tls/site-profile.js';
import { ProtocolError } from '../protocol/errors.js';
import {
  type ClientHeader,
  HEADER_LEN,
  parseClientHeader,
  type RandomSource,
  type Transport,
} from '../protocol/obfuscated2.js';
import { MAX_PROXY_HEADER, parseProxyHeader } from '../protocol/proxy-protocol.js';
import type { ReplayGuard, ReplayOutcome } from '../replay/replay-cache.js';
import type {
  CloseReason,
  Framing,
  HandshakeFailure,
  MaskFailure,
  RefusalReason,
  SessionObserver,
} from './events.js';
import type { ClientLink, PeerAddress, SessionHooks, Upstream } from './ports.js';

/** The secrets a handshake may match, and the name of each (same order). */
export interface UserTable {
  readonly secrets: readonly Buffer[];
  readonly names: readonly string[];
}

/**
 * Most bytes a connection may have us hold before we know what it is: a PROXY header, a complete
 * ClientHello, and one socket read past them. Every check decides well before (64 bytes for plain
 * obfuscated2, the hello's own length for TLS), so reaching it means a bug, and the connection fails.
 */
export const MAX_HANDSHAKE_BUFFER = MAX_PROXY_HEADER + MAX_HELLO_BUFFER + 65536;

export interface FakeTlsPolicy {
  /** Domains an SNI may name, lower-case. */
  readonly domains: readonly string[];
  readonly unknownSni: UnknownSniAction;
  readonly window: ClockWindow;
  /** Our clock in Unix seconds. */
  readonly now: () => number;
  /**
   * The measured shape of the site an SNI names (fake-tls/site-profile.ts); undefined, or
   * returning undefined, gives the fallback answer.
   */
  readonly profile?: (sni: string | undefined) => SiteProfile | undefined;
  /** 'dynamic' (default): records after the handshake sized like a web server's; 'off': up to 16 KB. */
  readonly recordSizes?: 'dynamic' | 'off';
  /** 'site': records leave in bursts spaced like the site's measured answer; 'off' (default). */
  readonly recordTiming?: 'site' | 'off';
}

/** Relays a failed connection to the mask host (masking/mask-relay.ts). */
export interface MaskRelay {
  relay(client: Socket, replay: readonly Buffer[]): Promise<'relaying' | MaskFailure>;
}

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
  readonly throttle?: HandshakeThrottle;
  /** Bound on this worker's handshakes not identified yet; undefined: none. */
  readonly unidentified?: UnidentifiedHandshakes;
  /**
   * With masking on: a connection still unidentified this long after it was accepted (silent, or
   * a partial handshake) goes to the mask host now, so the mask site's own timeouts run from about
   * the moment a direct connection to it would have started. Default 1000 ms.
   */
  readonly unidentifiedDeadlineMs?: number;
  /** Debug log of failed handshakes, with the client's real address. */
  readonly onFailure?: (peer: PeerAddress | undefined, reason: HandshakeFailure) => void;
}

/** Handles `client` until it closes; never throws, whatever the client sends. */
export function serveClient(client: Socket, deps: SessionDeps): void {
  new ClientSession(client, deps).start();
}

type Stage =
  | 'preamble' // reading a PROXY protocol header
  | 'detect' // reading the first bytes: TLS hello or obfuscated2 header
  | 'checking' // waiting for the replay cache; the client is paused
  | 'tls-inner' // ServerHello sent; reading the obfuscated2 header inside records
  | 'connecting' // handed to the upstream, not established yet
  | 'relaying'
  | 'masked'
  | 'holding';

const HELLO_FAILURES: Record<HelloFailureReason, HandshakeFailure> = {
  malformed: 'tls-malformed',
  'bad-mac': 'tls-bad-mac',
  'clock-skew': 'tls-clock-skew',
  'bad-sni': 'tls-bad-sni',
  'bad-cipher-suite': 'tls-bad-cipher-suite',
};

const REPLAY_FAILURES: Record<Exclude<ReplayOutcome, 'fresh'>, HandshakeFailure> = {
  replay: 'replay',
  full: 'replay-cache-full',
  'no-answer': 'replay-unanswered',
};

const identity = (chunk: Buffer): Buffer => chunk;

function transportAllowed(transport: Transport, framing: Framing, modes: ReadonlySet<ClientMode>): boolean {
  // tdlib sends padded intermediate inside fake TLS; the unpadded transports give themselves away
  // by their packet sizes, so inside TLS they need `classic` too (as in mtprotoproxy).
  if (framing === 'tls') return transport === 'padded' || modes.has('classic');
  return transport === 'padded' ? modes.has('secure') : modes.has('classic');
}

/** One reason for every ended session: abort() without one builds a DOMException each time. */
const SESSION_OVER = new Error('session over');

class ClientSession {
  readonly #client: Socket;
  readonly #deps: SessionDeps;
  readonly #abort = new AbortController();
  #stage: Stage;
  #peer: PeerAddress | undefined;
  #release: (() => void) | undefined;
  #upstream: Socket | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #holdTimer: NodeJS.Timeout | undefined;
  /** Bytes after the PROXY header, kept for the mask host until we answer anything. */
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** Re-examine the bytes once this many have arrived. */
  #need = 1;
  #reading = false;
  #tls:
    | { reader: TlsRecordReader; secret: Buffer; secretIndex: number; user: string; sni: string | undefined }
    | undefined;
  #inner: Buffer[] = [];
  #innerBytes = 0;
  #established = false;
  #refused = false;
  #finished = false;
  #failure: HandshakeFailure | undefined;
  #errorSide: 'client' | 'upstream' | undefined;
  #leaveUnidentified: (() => void) | undefined;
  #unidentifiedTimer: NodeJS.Timeout | undefined;

  constructor(client: Socket, deps: SessionDeps) {
    this.#client = client;
    this.#deps = deps;
    this.#stage = deps.proxyProtocol === 'off' ? 'detect' : 'preamble';
  }

  start(): void {
    const client = this.#client;
    client.setNoDelay(true);
    client.on('error', () => {
      this.#errorSide ??= 'client';
    });
    client.on('close', () => this.#finish(this.#errorSide === 'client' ? 'client-error' : 'client-closed'));
    client.on('end', this.#onEnd);
    this.#handshakeTimer = setTimeout(this.#onHandshakeTimeout, this.#deps.handshakeTimeoutMs);
    if (this.#stage === 'detect' && !this.#admit(this.#socketPeer())) return;
    this.#leaveUnidentified = this.#deps.unidentified?.enter(() => {
      this.#leaveUnidentified = undefined;
      this.#fail('throttled');
    });
    if (this.#deps.mask !== undefined) {
      const deadline = Math.min(this.#deps.unidentifiedDeadlineMs ?? 1000, this.#deps.handshakeTimeoutMs);
      this.#unidentifiedTimer = setTimeout(this.#onHandshakeTimeout, deadline);
    }
    this.#read(true);
  }

  /** The handshake has been decided one way or the other: no longer counted as unidentified. */
  #identified(): void {
    clearTimeout(this.#unidentifiedTimer);
    this.#leaveUnidentified?.();
    this.#leaveUnidentified = undefined;
  }

  /** What to try on this handshake's secrets, decided before any crypto. */
  #plan(): { plan: TrialPlan; address: string } {
    const address = (this.#peer ?? this.#socketPeer()).address;
    return { plan: this.#deps.throttle?.plan(address) ?? { kind: 'full', first: undefined }, address };
  }

  // --- reading ---------------------------------------------------------------------------------

  #read(on: boolean): void {
    if (on && !this.#reading) {
      this.#client.on('data', this.#onData);
      this.#client.resume();
    } else if (!on && this.#reading) {
      this.#client.pause();
      this.#client.off('data', this.#onData);
    }
    this.#reading = on;
  }

  readonly #onData = (chunk: Buffer): void => {
    switch (this.#stage) {
      case 'preamble':
      case 'detect':
        this.#chunks.push(chunk);
        this.#bytes += chunk.length;
        if (this.#bytes > MAX_HANDSHAKE_BUFFER) {
          this.#fail('oversized');
          return;
        }
        if (this.#bytes >= this.#need) this.#advance();
        return;
      case 'tls-inner':
        this.#feedInner(chunk);
        return;
      default:
        return; // holding: read and discard
    }
  };

  /** All bytes kept so far as one buffer (joined once, then kept joined). */
  #view(): Buffer {
    if (this.#chunks.length === 0) return Buffer.alloc(0);
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  #advance(): void {
    let view = this.#view();
    if (this.#stage === 'preamble') {
      let header: ReturnType<typeof parseProxyHeader>;
      try {
        header = parseProxyHeader(view, this.#deps.proxyProtocol as 'v1' | 'v2' | 'auto');
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        this.#refuse('bad_proxy_header');
        return;
      }
      if (header.kind === 'need-more') {
        this.#need = view.length + 1;
        return;
      }
      let peer = this.#socketPeer();
      if (header.kind === 'header') {
        if (header.source !== undefined && header.destination !== undefined) {
          peer = {
            address: header.source.address,
            port: header.source.port,
            localAddress: header.destination.address,
            localPort: header.destination.port,
          };
        }
        view = view.subarray(header.consumed);
        this.#chunks = view.length > 0 ? [view] : [];
        this.#bytes = view.length;
      }
      this.#stage = 'detect';
      if (!this.#admit(peer)) return;
      this.#need = 1;
      if (view.length === 0) return;
    }
    this.#detect(view);
  }

  #detect(view: Buffer): void {
    const deps = this.#deps;
    const plainAllowed = deps.modes.has('classic') || deps.modes.has('secure');
    if (deps.fakeTls !== undefined && view[0] === RECORD_HANDSHAKE) {
      const found = detectClientHello(view);
      if (found.kind === 'need-more') {
        this.#need = found.atLeast;
        return;
      }
      if (found.kind === 'hello') {
        this.#onHello(found.hello, found.rest);
        return;
      }
      // Not a hello after all: maybe an obfuscated2 header that happens to start with 0x16.
    }
    if (!plainAllowed) {
      this.#fail('not-tls');
      return;
    }
    if (view.length < HEADER_LEN) {
      this.#need = HEADER_LEN;
      return;
    }
    this.#onPlainHeader(view.subarray(0, HEADER_LEN), view.subarray(HEADER_LEN));
  }

  // --- plain obfuscated2 -----------------------------------------------------------------------

  #onPlainHeader(header: Buffer, rest: Buffer): void {
    const deps = this.#deps;
    const table = deps.users();
    this.#identified();
    const { plan, address } = this.#plan();
    let parsed: ClientHeader | undefined;
    if (plan.kind === 'full') {
      parsed = parseClientHeader(header, table.secrets, plan.first);
    } else if (plan.first !== undefined && plan.first < table.secrets.length) {
      const one = parseClientHeader(header, [table.secrets[plan.first]!]);
      parsed = one && { ...one, secretIndex: plan.first };
    }
    if (parsed === undefined) {
      if (plan.kind === 'full') deps.throttle?.failed(address);
      this.#fail(plan.kind === 'full' ? 'bad-secret' : 'throttled');
      return;
    }
    deps.throttle?.matched(address, parsed.secretIndex);
    const user = table.names[parsed.secretIndex]!;
    if (!transportAllowed(parsed.transport, 'plain', deps.modes)) {
      this.#fail('transport-not-allowed');
      return;
    }
    if (!deps.upstream.canServe(parsed.dc)) {
      this.#failNow('unknown-dc');
      return;
    }
    this.#checkReplay(parsed.replayKey, () => this.#accept(parsed, user, 'plain', identity, identity, rest));
  }

  /**
   * Asks the shared replay cache about an authenticated handshake (only those: a client without a
   * secret can never fill the cache or push anything out); the client is paused meanwhile. A
   * replay, a full cache and an unanswered check all fail like a bad client (fail closed).
   */
  #checkReplay(key: Buffer, then: () => void): void {
    const stage = this.#stage;
    this.#stage = 'checking';
    this.#read(false);
    void Promise.resolve(this.#deps.replay.check(key)).then((outcome) => {
      if (this.#finished) return;
      if (outcome !== 'fresh') {
        this.#fail(REPLAY_FAILURES[outcome]);
        return;
      }
      this.#stage = stage;
      then();
    });
  }

  // --- fake TLS --------------------------------------------------------------------------------

  #onHello(hello: Buffer, rest: Buffer): void {
    const deps = this.#deps;
    const policy = deps.fakeTls!;
    const table = deps.users();
    this.#identified();
    const { plan, address } = this.#plan();
    const only = plan.kind === 'remembered-only' ? plan.first : undefined;
    if (plan.kind === 'remembered-only' && (only === undefined || only >= table.secrets.length)) {
      this.#fail('throttled');
      return;
    }
    const secrets = only === undefined ? table.secrets : [table.secrets[only]!];
    const raw = validateClientHello(hello, {
      secrets,
      domains: policy.unknownSni === 'accept' ? [] : policy.domains,
      now: policy.now,
      window: policy.window,
      tryFirst: plan.first,
    });
    const verdict = only === undefined || raw.secretIndex === undefined ? raw : { ...raw, secretIndex: only };
    if (verdict.secretIndex === undefined) {
      if (only === undefined) deps.throttle?.failed(address);
    } else {
      deps.throttle?.matched(address, verdict.secretIndex);
    }
    if (!verdict.ok) {
      // A refused hello is not remembered (unlike §4.9's official proxy): remembering what no
      // secret opened would let anyone fill the cache. Its replay is refused again anyway.
      const reason =
        only !== undefined && verdict.reason === 'bad-mac' ? 'throttled' : HELLO_FAILURES[verdict.reason];
      this.#fail(reason, !(verdict.reason === 'bad-sni' && policy.unknownSni === 'drop'));
      return;
    }
    const secret = table.secrets[verdict.secretIndex]!;
    const user = table.names[verdict.secretIndex]!;
    const kind = helloKind(hello);
    this.#checkReplay(verdict.replayKey, () => this.#answerHello(verdict, kind, secret, user, rest));
  }

  #answerHello(hello: AcceptedHello, kind: HelloKind, secret: Buffer, user: string, rest: Buffer): void {
    const random = this.#deps.random;
    // The site's layout and flight size (or the fallback); always one write, as the apps need.
    const layout = answerLayout(this.#deps.fakeTls!.profile?.(hello.sni), kind, hello.cipherSuite, random);
    this.#client.write(
      buildServerHello({
        clientRandom: hello.clientRandom,
        sessionId: hello.sessionId,
        secret,
        cipherSuite: layout.cipherSuite,
        extensions: layout.extensions,
        payloadLength: layout.payloadLength,
        random,
      }),
    );
    // From here on the client has seen a proxy's answer: no more masking, and nothing to replay.
    this.#stage = 'tls-inner';
    this.#chunks = [];
    this.#bytes = 0;
    this.#tls = {
      reader: new TlsRecordReader(),
      secret,
      secretIndex: hello.secretIndex,
      user,
      sni: hello.sni,
    };
    if (rest.length > 0) this.#feedInner(rest);
    if (this.#stage === 'tls-inner') this.#read(true);
  }

  #feedInner(chunk: Buffer): void {
    let data: Buffer;
    try {
      data = this.#tls!.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#fail('tls-bad-records');
      return;
    }
    if (data.length === 0) return;
    this.#inner.push(data);
    this.#innerBytes += data.length;
    if (this.#innerBytes >= HEADER_LEN) this.#onInnerHeader();
  }

  /** TLS_RECORD_TIMING=site with a site whose measured answer had gaps to follow. */
  #pacer(sni: string | undefined): RecordPacer | undefined {
    const policy = this.#deps.fakeTls;
    if (policy?.recordTiming !== 'site') return undefined;
    const gaps = policy.profile?.(sni)?.response?.gapsMs;
    if (gaps === undefined) return undefined;
    const pacer = new RecordPacer(this.#client, gaps, this.#deps.random);
    return pacer.active ? pacer : undefined;
  }

  #onInnerHeader(): void {
    const deps = this.#deps;
    const tls = this.#tls!;
    const view = this.#inner.length === 1 ? this.#inner[0]! : Buffer.concat(this.#inner);
    this.#inner = [];
    const parsed = parseClientHeader(view.subarray(0, HEADER_LEN), [tls.secret]);
    if (parsed === undefined) {
      this.#fail('bad-secret');
      return;
    }
    if (!transportAllowed(parsed.transport, 'tls', deps.modes)) {
      this.#fail('transport-not-allowed');
      return;
    }
    if (!deps.upstream.canServe(parsed.dc)) {
      this.#failNow('unknown-dc');
      return;
    }
    const reader = tls.reader;
    const schedule =
      deps.fakeTls?.recordSizes === 'off'
        ? undefined
        : new RecordSchedule(scheduleForSite(deps.fakeTls?.profile?.(tls.sni)?.response?.records));
    const pacer = this.#pacer(tls.sni);
    const frame =
      schedule === undefined
        ? (chunk: Buffer) => wrapRecords(chunk)
        : (chunk: Buffer) => schedule.wrap(chunk);
    // The inner header is checked too: a fresh hello carrying a recorded session's header is a replay.
    this.#checkReplay(parsed.replayKey, () =>
      this.#accept(
        { ...parsed, secretIndex: tls.secretIndex },
        tls.user,
        'tls',
        (chunk) => reader.push(chunk),
        pacer === undefined
          ? frame
          : (chunk) => {
              pacer.beforeWrite();
              return frame(chunk);
            },
        view.subarray(HEADER_LEN),
      ),
    );
  }

  // --- hand-over -------------------------------------------------------------------------------

  #accept(
    header: ClientHeader,
    user: string,
    framing: Framing,
    unwrap: (chunk: Buffer) => Buffer,
    wrap: (chunk: Buffer) => Buffer,
    rest: Buffer,
  ): void {
    this.#read(false);
    this.#stage = 'connecting';
    this.#chunks = [];
    const deps = this.#deps;
    deps.observer.handshakeOk(user, header.transport, header.dc, framing);
    const link: ClientLink = {
      socket: this.#client,
      header,
      framing,
      unwrap,
      wrap,
      rest,
      peer: this.#peer ?? this.#socketPeer(),
      user,
    };
    const hooks: SessionHooks = {
      signal: this.#abort.signal,
      observer: deps.observer,
      random: deps.random,
      established: (upstream) => this.#onEstablished(upstream),
      finish: (reason) => this.#finish(reason),
    };
    deps.upstream.start(link, hooks);
  }

  #onEstablished(upstream: Socket | undefined): void {
    if (this.#finished) {
      upstream?.destroy();
      return;
    }
    this.#established = true;
    this.#stage = 'relaying';
    clearTimeout(this.#handshakeTimer);
    if (upstream !== undefined) {
      this.#upstream = upstream;
      upstream.on('error', () => {
        this.#errorSide ??= 'upstream';
      });
      upstream.on('close', () =>
        this.#finish(this.#errorSide === 'upstream' ? 'upstream-error' : 'upstream-closed'),
      );
    }
    this.#client.setTimeout(this.#deps.idleTimeoutMs, () => this.#finish('idle'));
  }

  // --- failures --------------------------------------------------------------------------------

  #socketPeer(): PeerAddress {
    const c = this.#client;
    return {
      address: c.remoteAddress ?? '',
      port: c.remotePort ?? 0,
      localAddress: c.localAddress ?? '',
      localPort: c.localPort ?? 0,
    };
  }

  #admit(peer: PeerAddress): boolean {
    this.#peer = peer;
    this.#release = this.#deps.admit(peer);
    if (this.#release !== undefined) return true;
    this.#refuse('per_ip_limit');
    return false;
  }

  #refuse(reason: RefusalReason): void {
    this.#refused = true;
    this.#deps.observer.refused(reason);
    this.#finish('refused');
  }

  #recordFailure(reason: HandshakeFailure): void {
    if (this.#failure !== undefined) return;
    this.#failure = reason;
    this.#deps.observer.handshakeFailed(reason);
    this.#deps.onFailure?.(this.#peer, reason);
  }

  /**
   * Not one of our clients. Before we answered anything: the mask host gets the connection (unless
   * `mayMask` is false or there is none); afterwards, or without one, it is held and closed.
   */
  #fail(reason: HandshakeFailure, mayMask = true): void {
    if (this.#finished) return;
    this.#identified();
    this.#recordFailure(reason);
    const answered = this.#tls !== undefined;
    const mask = this.#deps.mask;
    if (mask !== undefined && mayMask && !answered) this.#mask(mask);
    else this.#hold();
  }

  /** A client that knows a secret but asked for something we cannot do: close now. */
  #failNow(reason: HandshakeFailure): void {
    this.#recordFailure(reason);
    this.#finish('handshake-failed');
  }

  #mask(mask: MaskRelay): void {
    this.#read(false);
    this.#stage = 'masked';
    clearTimeout(this.#handshakeTimer);
    const replay = this.#chunks;
    this.#chunks = [];
    mask.relay(this.#client, replay).then(
      (outcome) => {
        if (outcome === 'relaying') {
          if (!this.#finished) this.#deps.observer.masked();
          return;
        }
        this.#deps.observer.maskFailed(outcome);
        if (!this.#finished) this.#hold();
      },
      () => {
        if (!this.#finished) this.#hold();
      },
    );
  }

  /**
   * Say nothing, read and discard, and close after a random delay around the handshake timeout:
   * neither an instant reset nor a fixed time a prober could measure.
   */
  #hold(): void {
    this.#stage = 'holding';
    clearTimeout(this.#handshakeTimer);
    this.#read(true);
    const t = this.#deps.handshakeTimeoutMs;
    const fraction = this.#deps.random(2).readUInt16LE(0) / 65536;
    this.#holdTimer = setTimeout(() => this.#finish('handshake-failed'), t / 2 + fraction * t);
  }

  readonly #onHandshakeTimeout = (): void => {
    if (this.#finished || this.#established) return;
    switch (this.#stage) {
      case 'preamble':
      case 'detect':
        // Still unidentified at the deadline: the mask host sees what a web server would.
        this.#fail('timeout');
        return;
      case 'masked':
      case 'holding':
        return;
      default:
        this.#recordFailure('timeout');
        this.#finish('handshake-failed');
    }
  };

  /** The client half-closed (the listener allows half-open sockets, for masking). */
  readonly #onEnd = (): void => {
    switch (this.#stage) {
      case 'detect':
        // A prober that sent a request and shut down its side still gets the mask host's answer.
        if (this.#bytes > 0) this.#fail('client-closed');
        else this.#finish('client-closed');
        return;
      case 'masked':
        return; // the mask relay forwards it
      case 'holding':
        this.#finish('handshake-failed');
        return;
      default:
        this.#finish('client-closed');
    }
  };

  #finish(reason: CloseReason): void {
    if (this.#finished) return;
    if (!this.#established && !this.#refused && this.#stage !== 'masked' && this.#failure === undefined) {
      if (reason === 'client-closed' || reason === 'client-error') this.#recordFailure('client-closed');
    }
    this.#finished = true;
    this.#identified();
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#holdTimer);
    this.#abort.abort(SESSION_OVER);
    this.#client.destroy();
    this.#upstream?.destroy();
    this.#release?.();
    this.#release = undefined;
    const final: CloseReason = this.#established
      ? reason
      : this.#refused
        ? 'refused'
        : this.#stage === 'masked'
          ? 'masked'
          : 'handshake-failed';
    this.#deps.observer.closed(final, this.#established);
  }
}
