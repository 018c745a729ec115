// A client's handshake as a pure state machine: events in (bytes received, the per-address
// admission's answer, the replay cache's answer, a deadline, a half-close, an eviction), actions out
// (read more, admit this peer, check this replay key, write this answer, accept, refuse, fail and
// mask or hold or close). It owns no socket, no timer and no Promise; client-session.ts runs the
// actions. The stages, in order:
//   [PROXY protocol header] -> admission -> detect: a fake-TLS ClientHello or a plain obfuscated2
//   header -> replay check -> (TLS: our ServerHello, then the obfuscated2 header inside records
//   -> replay check again) -> accept.
// A connection that fails before we answered anything is masked (its bytes replayed to the mask
// host) or, without a mask host, held and closed after a random delay; after our ServerHello it
// can only be held. Nothing the client sends can make this code throw.

import {
  type AcceptedHello,
  buildServerHello,
  detectClientHello,
  type HelloFailureReason,
  MAX_HELLO_BUFFER,
  RECORD_HANDSHAKE,
  TlsRecordReader,
  validateClientHello,
} from '../fake-tls/codec.js';
import { answerLayout, type HelloKind, helloKind } from '../fake-tls/site-profile.js';
import { ProtocolError } from '../protocol/errors.js';
import {
  type ClientHeader,
  HEADER_LEN,
  parseClientHeader,
  type RandomSource,
} from '../protocol/obfuscated2.js';
import { MAX_PROXY_HEADER, parseProxyHeader } from '../protocol/proxy-protocol.js';
import type { CloseReason, Framing, HandshakeFailure, RefusalReason } from './events.js';
import {
  type ClientMode,
  type FakeTlsPolicy,
  type ProxyProtocolSetting,
  transportAllowed,
} from './policy.js';
import type { PeerAddress, ReplayOutcome, TrialPlan, TrialThrottle, UserTable } from './ports.js';

/**
 * Most bytes a connection may have us hold before we know what it is: a PROXY header, a complete
 * ClientHello, and one socket read past them. Every check decides well before (64 bytes for plain
 * obfuscated2, the hello's own length for TLS), so reaching it means a bug, and the connection fails.
 */
export const MAX_HANDSHAKE_BUFFER = MAX_PROXY_HEADER + MAX_HELLO_BUFFER + 65536;

/** Everything a handshake decides with; one object per worker, shared by its connections. */
export interface HandshakeRules {
  /** Read at each handshake, so a reload applies to new connections only. */
  readonly users: () => UserTable;
  readonly modes: ReadonlySet<ClientMode>;
  /** Present when fake TLS is on (`tls` in modes). */
  readonly fakeTls: FakeTlsPolicy | undefined;
  readonly proxyProtocol: ProxyProtocolSetting;
  /** Per-source budget of failed handshakes, asked before any crypto; undefined: none. */
  readonly throttle: TrialThrottle | undefined;
  /** Whether the upstream can reach a DC; asked before the client is accepted. */
  readonly canServe: (dc: number) => boolean;
  /** Whether there is a mask host: failed connections are masked, else held. */
  readonly masking: boolean;
  /** Answers' random bytes and the random part of a hold's delay. */
  readonly random: RandomSource;
  /** A held connection is closed after 0.5 to 1.5 times this. */
  readonly handshakeTimeoutMs: number;
}

export type HandshakeEvent =
  /** The client sent bytes. */
  | { readonly kind: 'bytes'; readonly chunk: Buffer }
  /** The per-address limit's answer to an `admit` action. */
  | { readonly kind: 'admitted'; readonly ok: boolean }
  /** The replay cache's answer to a `check-replay` action. */
  | { readonly kind: 'replay'; readonly outcome: ReplayOutcome }
  /** The handshake deadline, or (with masking) the deadline for staying unidentified, passed. */
  | { readonly kind: 'timeout' }
  /** The client shut down its sending side. */
  | { readonly kind: 'half-closed' }
  /** Too many handshakes of this worker are unidentified and this one is the oldest. */
  | { readonly kind: 'evicted' };

/** An authenticated client: what the upstream needs, and nothing else of the handshake. */
export interface AcceptAction {
  readonly type: 'accept';
  /** Secret, transport, DC; `header.decryptor` has consumed the 64 header bytes. */
  readonly header: ClientHeader;
  readonly user: string;
  readonly framing: Framing;
  /** Obfuscated2 bytes the client sent after its header (unwrapped, still encrypted). */
  readonly rest: Buffer;
  /** Fake TLS: the reader of the client's records, which may hold the start of the next one. */
  readonly records: TlsRecordReader | undefined;
  /** Fake TLS: the hello's server name (chooses the site whose record sizes we copy). */
  readonly sni: string | undefined;
}

export type HandshakeAction =
  /** Keep reading: nothing can be decided with the bytes so far. */
  | { readonly type: 'need-more' }
  /** Ask the per-address limit about `peer`, then report with an `admitted` event. */
  | { readonly type: 'admit'; readonly peer: PeerAddress }
  /** No longer an unidentified handshake: leave the unidentified cap, stop its deadline. */
  | { readonly type: 'identified' }
  /** Stop reading, ask the replay cache, then report with a `replay` event. */
  | { readonly type: 'check-replay'; readonly key: Buffer }
  /** Send these bytes to the client (our ServerHello). */
  | { readonly type: 'write'; readonly bytes: Buffer }
  | AcceptAction
  /** Turn the connection away before any handshake, counted by `reason`; close it. */
  | { readonly type: 'refuse'; readonly reason: RefusalReason }
  /** Count a failed handshake; the next action says what becomes of the connection. */
  | { readonly type: 'fail'; readonly reason: HandshakeFailure }
  /** Hand the connection to the mask host, replaying what the client sent. */
  | { readonly type: 'mask'; readonly replay: readonly Buffer[] }
  /** Say nothing, read and discard, and close as failed after `ms`. */
  | { readonly type: 'hold'; readonly ms: number }
  /** Close now. */
  | { readonly type: 'close'; readonly reason: CloseReason };

type Stage =
  | 'preamble' // reading a PROXY protocol header
  | 'admitting' // waiting for the per-address limit
  | 'detect' // reading the first bytes: TLS hello or obfuscated2 header
  | 'checking-plain' // plain header authenticated; waiting for the replay cache
  | 'checking-hello' // hello authenticated; waiting for the replay cache
  | 'tls-inner' // ServerHello sent; reading the obfuscated2 header inside records
  | 'checking-inner' // inner header authenticated; waiting for the replay cache
  | 'done'; // an accept, refuse, mask, hold or close was given: nothing more to decide

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

const NEED_MORE: HandshakeAction = { type: 'need-more' };
const IDENTIFIED: HandshakeAction = { type: 'identified' };
const CLIENT_CLOSED: HandshakeAction = { type: 'close', reason: 'client-closed' };
const CLOSE_FAILED: HandshakeAction = { type: 'close', reason: 'handshake-failed' };

/**
 * How long a failed connection is held before we close it: a random time between half and one and
 * a half handshake timeouts, neither an instant reset nor a fixed time a prober could measure.
 */
export function holdDelayMs(handshakeTimeoutMs: number, random: RandomSource): number {
  const fraction = random(2).readUInt16LE(0) / 65536;
  return handshakeTimeoutMs / 2 + fraction * handshakeTimeoutMs;
}

/** A hello or header authenticated and waiting for the replay cache. */
type Pending =
  | {
      readonly stage: 'checking-plain';
      readonly header: ClientHeader;
      readonly user: string;
      readonly rest: Buffer;
    }
  | {
      readonly stage: 'checking-hello';
      readonly hello: AcceptedHello;
      readonly kind: HelloKind;
      readonly secret: Buffer;
      readonly user: string;
      readonly rest: Buffer;
    }
  | { readonly stage: 'checking-inner'; readonly header: ClientHeader; readonly rest: Buffer };

/** After our ServerHello: what the inner header is checked against. */
interface Answered {
  readonly reader: TlsRecordReader;
  readonly secret: Buffer;
  readonly secretIndex: number;
  readonly user: string;
  readonly sni: string | undefined;
}

export class Handshake {
  readonly #rules: HandshakeRules;
  #stage: Stage;
  /** The client as we know it: the socket's peer, or the PROXY header's source once read. */
  #peer: PeerAddress;
  /** Bytes after the PROXY header, kept for the mask host until we answer anything. */
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** Re-examine the bytes once this many have arrived. */
  #need = 1;
  #unidentified = true;
  #pending: Pending | undefined;
  #answered: Answered | undefined;
  #inner: Buffer[] = [];
  #innerBytes = 0;
  /** The actions of the current step. */
  #out: HandshakeAction[] = [];

  /** `peer`: the socket's remote and local addresses (a PROXY header may replace them). */
  constructor(rules: HandshakeRules, peer: PeerAddress) {
    this.#rules = rules;
    this.#peer = peer;
    this.#stage = rules.proxyProtocol === 'off' ? 'admitting' : 'preamble';
  }

  /** The first actions: admit the socket's peer, or read a PROXY header first. */
  start(): readonly HandshakeAction[] {
    if (this.#stage === 'admitting') return [{ type: 'admit', peer: this.#peer }];
    return [NEED_MORE];
  }

  /** Whether the handshake still has something to decide. */
  get done(): boolean {
    return this.#stage === 'done';
  }

  step(event: HandshakeEvent): readonly HandshakeAction[] {
    const out: HandshakeAction[] = [];
    this.#out = out;
    switch (event.kind) {
      case 'bytes':
        this.#onBytes(event.chunk);
        break;
      case 'admitted':
        if (this.#stage === 'admitting') this.#onAdmitted(event.ok);
        break;
      case 'replay':
        if (this.#pending !== undefined) this.#onReplay(this.#pending, event.outcome);
        break;
      case 'timeout':
        this.#onTimeout();
        break;
      case 'half-closed':
        this.#onHalfClosed();
        break;
      case 'evicted':
        if (this.#stage === 'preamble' || this.#stage === 'detect') this.#fail('throttled');
        break;
    }
    return out;
  }

  // --- reading ---------------------------------------------------------------------------------

  #onBytes(chunk: Buffer): void {
    switch (this.#stage) {
      case 'preamble':
      case 'detect':
        this.#chunks.push(chunk);
        this.#bytes += chunk.length;
        if (this.#bytes > MAX_HANDSHAKE_BUFFER) this.#fail('oversized');
        else if (this.#bytes >= this.#need) this.#advance();
        else this.#out.push(NEED_MORE);
        return;
      case 'tls-inner':
        this.#feedInner(chunk);
        return;
      default:
        return; // paused for an answer, or decided: nothing to read
    }
  }

  /** All bytes kept so far as one buffer (joined once, then kept joined). */
  #view(): Buffer {
    if (this.#chunks.length === 0) return Buffer.alloc(0);
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  #advance(): void {
    const view = this.#view();
    if (this.#stage === 'detect') {
      this.#detect(view);
      return;
    }
    let header: ReturnType<typeof parseProxyHeader>;
    try {
      header = parseProxyHeader(view, this.#rules.proxyProtocol as 'v1' | 'v2' | 'auto');
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#refuse('bad_proxy_header');
      return;
    }
    if (header.kind === 'need-more') {
      this.#need = view.length + 1;
      this.#out.push(NEED_MORE);
      return;
    }
    if (header.kind === 'header') {
      if (header.source !== undefined && header.destination !== undefined) {
        this.#peer = {
          address: header.source.address,
          port: header.source.port,
          localAddress: header.destination.address,
          localPort: header.destination.port,
        };
      }
      const rest = view.subarray(header.consumed);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#bytes = rest.length;
    }
    this.#stage = 'admitting';
    this.#out.push({ type: 'admit', peer: this.#peer });
  }

  #onAdmitted(ok: boolean): void {
    if (!ok) {
      this.#refuse('per_ip_limit');
      return;
    }
    this.#stage = 'detect';
    this.#need = 1;
    if (this.#bytes === 0) this.#out.push(NEED_MORE);
    else this.#detect(this.#view());
  }

  #detect(view: Buffer): void {
    const rules = this.#rules;
    if (rules.fakeTls !== undefined && view[0] === RECORD_HANDSHAKE) {
      const found = detectClientHello(view);
      if (found.kind === 'need-more') {
        this.#need = found.atLeast;
        this.#out.push(NEED_MORE);
        return;
      }
      if (found.kind === 'hello') {
        this.#onHello(rules.fakeTls, found.hello, found.rest);
        return;
      }
      // Not a hello after all: maybe an obfuscated2 header that happens to start with 0x16.
    }
    if (!rules.modes.has('classic') && !rules.modes.has('secure')) {
      this.#fail('not-tls');
      return;
    }
    if (view.length < HEADER_LEN) {
      this.#need = HEADER_LEN;
      this.#out.push(NEED_MORE);
      return;
    }
    this.#onPlainHeader(view.subarray(0, HEADER_LEN), view.subarray(HEADER_LEN));
  }

  /** What to try on this handshake's secrets, decided before any crypto. */
  #plan(): TrialPlan {
    return this.#rules.throttle?.plan(this.#peer.address) ?? { kind: 'full', first: undefined };
  }

  #identify(): void {
    if (!this.#unidentified) return;
    this.#unidentified = false;
    this.#out.push(IDENTIFIED);
  }

  // --- plain obfuscated2 -----------------------------------------------------------------------

  #onPlainHeader(header: Buffer, rest: Buffer): void {
    const rules = this.#rules;
    const table = rules.users();
    this.#identify();
    const plan = this.#plan();
    const address = this.#peer.address;
    let parsed: ClientHeader | undefined;
    if (plan.kind === 'full') {
      parsed = parseClientHeader(header, table.secrets, plan.first);
    } else if (plan.first !== undefined && plan.first < table.secrets.length) {
      const one = parseClientHeader(header, [table.secrets[plan.first]!]);
      parsed = one && { ...one, secretIndex: plan.first };
    }
    if (parsed === undefined) {
      if (plan.kind === 'full') rules.throttle?.failed(address);
      this.#fail(plan.kind === 'full' ? 'bad-secret' : 'throttled');
      return;
    }
    rules.throttle?.matched(address, parsed.secretIndex);
    if (!this.#servable(parsed, 'plain')) return;
    const user = table.names[parsed.secretIndex]!;
    this.#checkReplay(parsed.replayKey, { stage: 'checking-plain', header: parsed, user, rest });
  }

  /**
   * Whether MODES allows the header's transport and the upstream reaches its DC; fails the
   * handshake when not. A wrong transport fails like a prober; a DC we cannot reach is a real client
   * asking too much: closed at once, not masked.
   */
  #servable(parsed: ClientHeader, framing: Framing): boolean {
    if (!transportAllowed(parsed.transport, framing, this.#rules.modes)) {
      this.#fail('transport-not-allowed');
      return false;
    }
    if (!this.#rules.canServe(parsed.dc)) {
      this.#failNow('unknown-dc');
      return false;
    }
    return true;
  }

  /**
   * Asks the shared replay cache about an authenticated handshake (only those: a client without a
   * secret can never fill the cache or push anything out); reading stops meanwhile. A replay, a
   * full cache and an unanswered check all fail like a bad client (fail closed).
   */
  #checkReplay(key: Buffer, pending: Pending): void {
    this.#stage = pending.stage;
    this.#pending = pending;
    this.#out.push({ type: 'check-replay', key });
  }

  #onReplay(pending: Pending, outcome: ReplayOutcome): void {
    this.#pending = undefined;
    if (outcome !== 'fresh') {
      this.#fail(REPLAY_FAILURES[outcome]);
      return;
    }
    switch (pending.stage) {
      case 'checking-plain':
        this.#accept(pending.header, pending.user, 'plain', pending.rest);
        return;
      case 'checking-hello':
        this.#answerHello(pending.hello, pending.kind, pending.secret, pending.user, pending.rest);
        return;
      case 'checking-inner':
        this.#accept(pending.header, this.#answered!.user, 'tls', pending.rest);
        return;
    }
  }

  // --- fake TLS --------------------------------------------------------------------------------

  #onHello(policy: FakeTlsPolicy, hello: Buffer, rest: Buffer): void {
    const rules = this.#rules;
    const table = rules.users();
    this.#identify();
    const plan = this.#plan();
    const address = this.#peer.address;
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
      if (only === undefined) rules.throttle?.failed(address);
    } else {
      rules.throttle?.matched(address, verdict.secretIndex);
    }
    if (!verdict.ok) {
      // A refused hello is not remembered (unlike §4.9's official proxy): remembering what no
      // secret opened would let anyone fill the cache. Its replay is refused again anyway.
      const reason =
        only !== undefined && verdict.reason === 'bad-mac' ? 'throttled' : HELLO_FAILURES[verdict.reason];
      // UNKNOWN_SNI=drop: a hello for another site is closed unanswered, never shown the mask site.
      this.#fail(reason, !(verdict.reason === 'bad-sni' && policy.unknownSni === 'drop'));
      return;
    }
    this.#checkReplay(verdict.replayKey, {
      stage: 'checking-hello',
      hello: verdict,
      kind: helloKind(hello),
      secret: table.secrets[verdict.secretIndex]!,
      user: table.names[verdict.secretIndex]!,
      rest,
    });
  }

  #answerHello(hello: AcceptedHello, kind: HelloKind, secret: Buffer, user: string, rest: Buffer): void {
    const random = this.#rules.random;
    // The site's layout and flight size (or the fallback); always one write, as the apps need.
    const layout = answerLayout(this.#rules.fakeTls?.profile?.(hello.sni), kind, hello.cipherSuite, random);
    this.#out.push({
      type: 'write',
      bytes: buildServerHello({
        clientRandom: hello.clientRandom,
        sessionId: hello.sessionId,
        secret,
        cipherSuite: layout.cipherSuite,
        extensions: layout.extensions,
        payloadLength: layout.payloadLength,
        random,
      }),
    });
    // From here on the client has seen a proxy's answer: no more masking, and nothing to replay.
    this.#stage = 'tls-inner';
    this.#chunks = [];
    this.#bytes = 0;
    this.#answered = {
      reader: new TlsRecordReader(),
      secret,
      secretIndex: hello.secretIndex,
      user,
      sni: hello.sni,
    };
    if (rest.length > 0) this.#feedInner(rest);
    else this.#out.push(NEED_MORE);
  }

  #feedInner(chunk: Buffer): void {
    let data: Buffer;
    try {
      data = this.#answered!.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#fail('tls-bad-records');
      return;
    }
    if (data.length > 0) {
      this.#inner.push(data);
      this.#innerBytes += data.length;
    }
    if (this.#innerBytes >= HEADER_LEN) this.#onInnerHeader(this.#answered!);
    else this.#out.push(NEED_MORE);
  }

  #onInnerHeader(answered: Answered): void {
    const view = this.#inner.length === 1 ? this.#inner[0]! : Buffer.concat(this.#inner);
    this.#inner = [];
    const parsed = parseClientHeader(view.subarray(0, HEADER_LEN), [answered.secret]);
    if (parsed === undefined) {
      this.#fail('bad-secret');
      return;
    }
    if (!this.#servable(parsed, 'tls')) return;
    // The inner header is checked too: a fresh hello carrying a recorded session's header is a replay.
    this.#checkReplay(parsed.replayKey, {
      stage: 'checking-inner',
      header: { ...parsed, secretIndex: answered.secretIndex },
      rest: view.subarray(HEADER_LEN),
    });
  }

  // --- decisions -------------------------------------------------------------------------------

  #accept(header: ClientHeader, user: string, framing: Framing, rest: Buffer): void {
    const answered = this.#answered;
    this.#out.push({
      type: 'accept',
      header,
      user,
      framing,
      rest,
      records: answered?.reader,
      sni: answered?.sni,
    });
    this.#end();
  }

  #refuse(reason: RefusalReason): void {
    this.#out.push({ type: 'refuse', reason });
    this.#end();
  }

  /**
   * Not one of our clients. Before we answered anything: the mask host gets the connection (unless
   * `mayMask` is false or there is none); afterwards, or without one, it is held and closed.
   */
  #fail(reason: HandshakeFailure, mayMask = true): void {
    this.#identify();
    this.#out.push({ type: 'fail', reason });
    if (this.#rules.masking && mayMask && this.#answered === undefined) {
      this.#out.push({ type: 'mask', replay: this.#chunks });
    } else {
      this.#out.push({ type: 'hold', ms: holdDelayMs(this.#rules.handshakeTimeoutMs, this.#rules.random) });
    }
    this.#end();
  }

  /** A client that knows a secret but asked for something we cannot do, or too late: close now. */
  #failNow(reason: HandshakeFailure): void {
    this.#out.push({ type: 'fail', reason }, CLOSE_FAILED);
    this.#end();
  }

  #onTimeout(): void {
    switch (this.#stage) {
      case 'preamble':
      case 'detect':
        // Still unidentified at the deadline: the mask host sees what a web server would.
        this.#fail('timeout');
        return;
      case 'done':
        return;
      default:
        this.#failNow('timeout');
    }
  }

  /** The client half-closed (the listener allows half-open sockets, for masking). */
  #onHalfClosed(): void {
    switch (this.#stage) {
      case 'detect':
        // A prober that sent a request and shut down its side still gets the mask host's answer.
        if (this.#bytes > 0) this.#fail('client-closed');
        else this.#close();
        return;
      case 'done':
        return;
      default:
        this.#close();
    }
  }

  #close(): void {
    this.#out.push(CLIENT_CLOSED);
    this.#end();
  }

  /** Decided: let go of everything read, so nothing of the handshake outlives it. */
  #end(): void {
    this.#stage = 'done';
    this.#chunks = [];
    this.#bytes = 0;
    this.#pending = undefined;
    this.#answered = undefined;
    this.#inner = [];
  }
}
