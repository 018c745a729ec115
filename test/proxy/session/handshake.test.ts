// The handshake state machine (proxy/src/session/handshake.ts) without sockets or timers: each row
// is what a client (or a prober, or a load balancer) sends and what happens, and then what the
// proxy does, as the machine's actions in order: "need more", "admit <address>", "identified",
// "check replay", "write", "accept <user> <framing> <transport> dc<n>", "refuse <reason>",
// "fail <reason>", "mask <n> bytes" (the bytes replayed to the mask host), "hold", "close <reason>".

import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  buildClientHello,
  splitHelloRecords,
  verifyServerHello,
} from '../../../proxy/src/fake-tls/client.js';
import { DEFAULT_CLOCK_WINDOW } from '../../../proxy/src/fake-tls/client-hello.js';
import { CHANGE_CIPHER_SPEC, wrapRecords } from '../../../proxy/src/fake-tls/records.js';
import { createClientHeader, type Transport } from '../../../proxy/src/protocol/obfuscated2.js';
import { formatProxyHeaderV1, formatProxyHeaderV2 } from '../../../proxy/src/protocol/proxy-protocol.js';
import {
  type AcceptAction,
  Handshake,
  type HandshakeAction,
  type HandshakeEvent,
  type HandshakeRules,
  MAX_HANDSHAKE_BUFFER,
} from '../../../proxy/src/session/handshake.js';
import type { ClientMode } from '../../../proxy/src/session/policy.js';
import type {
  PeerAddress,
  ReplayOutcome,
  TrialPlan,
  TrialThrottle,
} from '../../../proxy/src/session/ports.js';
import { resign, seededRandom } from '../../support/test-bytes.js';

const NOW = 1_700_000_000;
const TIMEOUT_MS = 10_000;
const alice = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const bob = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
const stranger = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const SOCKET: PeerAddress = { address: '127.0.0.1', port: 40000, localAddress: '127.0.0.1', localPort: 443 };
const BALANCED = { address: '203.0.113.7', port: 5555 };
const US = { address: '198.51.100.1', port: 443 };

const RULES: HandshakeRules = {
  users: () => ({ secrets: [alice, bob], names: ['alice', 'bob'] }),
  modes: new Set<ClientMode>(['classic', 'secure', 'tls']),
  fakeTls: { domains: ['example.com'], unknownSni: 'mask', window: DEFAULT_CLOCK_WINDOW, now: () => NOW },
  proxyProtocol: 'off',
  throttle: undefined,
  canServe: (dc) => Math.abs(dc) >= 1 && Math.abs(dc) <= 5,
  masking: true,
  random: seededRandom('proxy'),
  handshakeTimeoutMs: TIMEOUT_MS,
};

// --- what clients send ---------------------------------------------------------------------------

const clientRandom = seededRandom('client');

/** A plain obfuscated2 header (a dd link when padded). */
function header(secret: Buffer, transport: Transport = 'padded', dc = 2): Buffer {
  return createClientHeader(clientRandom, secret, transport, dc).wire;
}

/** A fake-TLS ClientHello, as one record. */
function hello(secret: Buffer, opts: { domain?: string | null; now?: number } = {}): Buffer {
  const domain = opts.domain === null ? undefined : (opts.domain ?? 'example.com');
  return buildClientHello({ secret, domain, now: opts.now ?? NOW, random: clientRandom }).hello;
}

/** What a fake-TLS client sends after our ServerHello: ChangeCipherSpec, then records of obfuscated2. */
function records(inner: Buffer): Buffer {
  return Buffer.concat([CHANGE_CIPHER_SPEC, wrapRecords(inner)]);
}

/** A hello whose first real cipher suite is TLS 1.2's, signed for `secret`. */
function helloWithTls12Suite(secret: Buffer): Buffer {
  const body = Buffer.from(hello(secret));
  // Cipher suites start after the 32-byte session id: length, GREASE, then 13 01.
  body.writeUInt16BE(0xc02b, 44 + 32 + 2 + 2);
  return resign(body, secret, NOW);
}

/** An authentic hello (right MAC and time) whose body cannot be read: a session id longer than it. */
function helloUnreadable(secret: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([200]), Buffer.alloc(10)]);
  const head = Buffer.alloc(9);
  head.writeUIntBE(0x160301, 0, 3);
  head.writeUInt16BE(body.length + 4, 3);
  head.writeUInt32BE(0x01000000 | body.length, 5);
  return resign(Buffer.concat([head, body]), secret, NOW);
}

const v1 = formatProxyHeaderV1(BALANCED, US);
const v2 = formatProxyHeaderV2(BALANCED, US);
const garbage = (n: number, first = 0x47): Buffer =>
  Buffer.concat([Buffer.from([first]), randomBytes(n - 1)]);

// --- events --------------------------------------------------------------------------------------

const ADMITTED: HandshakeEvent = { kind: 'admitted', ok: true };
const LIMITED: HandshakeEvent = { kind: 'admitted', ok: false };
const TIMEOUT: HandshakeEvent = { kind: 'timeout' };
const HALF_CLOSED: HandshakeEvent = { kind: 'half-closed' };
const EVICTED: HandshakeEvent = { kind: 'evicted' };
const FRESH = replay('fresh');
function replay(outcome: ReplayOutcome): HandshakeEvent {
  return { kind: 'replay', outcome };
}

type Step = Buffer | HandshakeEvent;

// --- what the proxy does -------------------------------------------------------------------------

function describeAction(a: HandshakeAction): string {
  switch (a.type) {
    case 'need-more':
      return 'need more';
    case 'admit':
      return `admit ${a.peer.address}:${a.peer.port}`;
    case 'identified':
    case 'write':
      return a.type;
    case 'check-replay':
      return 'check replay';
    case 'accept':
      return `accept ${a.user} ${a.framing} ${a.header.transport} dc${a.header.dc}`;
    case 'refuse':
    case 'fail':
    case 'close':
      return `${a.type} ${a.reason}`;
    case 'mask':
      return `mask ${a.replay.reduce((n, b) => n + b.length, 0)} bytes`;
    case 'hold':
      return 'hold';
  }
}

interface Run {
  readonly machine: Handshake;
  /** Every action, in order, from start() on. */
  readonly actions: HandshakeAction[];
  readonly said: string[];
}

/** A connection through `steps` from its start. */
function connect(steps: readonly Step[], rules: Partial<HandshakeRules> = {}, peer = SOCKET): Run {
  const machine = new Handshake({ ...RULES, ...rules }, peer);
  const actions = [...machine.start()];
  for (const step of steps) {
    actions.push(...machine.step(Buffer.isBuffer(step) ? { kind: 'bytes', chunk: step } : step));
  }
  return { machine, actions, said: actions.map(describeAction) };
}

/** What the proxy does after the socket's address was admitted (no PROXY protocol). */
function afterAdmission(steps: readonly Step[], rules: Partial<HandshakeRules> = {}): string[] {
  return connect([ADMITTED, ...steps], rules).said.slice(2);
}

interface Row {
  readonly what: string;
  readonly steps: readonly Step[];
  readonly rules?: Partial<HandshakeRules>;
  readonly sees: readonly string[];
}

/** Rows behind a load balancer (PROXY protocol) are shown from the start, the others after admission. */
function table(rows: readonly Row[]): void {
  for (const row of rows) {
    it(row.what, () => {
      const behindBalancer = (row.rules?.proxyProtocol ?? 'off') !== 'off';
      const run = behindBalancer ? connect(row.steps, row.rules).said : afterAdmission(row.steps, row.rules);
      expect(run).to.deep.equal(row.sees);
    });
  }
}

// --- the tables ----------------------------------------------------------------------------------

describe('handshake: a load balancer in front (PROXY protocol)', () => {
  table([
    {
      what: 'v1: header and dd handshake in one segment -> the address in the header is admitted, then checked',
      rules: { proxyProtocol: 'v1' },
      steps: [Buffer.concat([v1, header(alice)]), ADMITTED],
      sees: ['need more', 'admit 203.0.113.7:5555', 'identified', 'check replay'],
    },
    {
      what: 'v1 in pieces -> more is read until the line is complete',
      rules: { proxyProtocol: 'v1' },
      steps: [v1.subarray(0, 10), v1.subarray(10), ADMITTED],
      sees: ['need more', 'need more', 'admit 203.0.113.7:5555', 'need more'],
    },
    {
      what: 'v2 with an IPv6 source -> that source is admitted',
      rules: { proxyProtocol: 'v2' },
      steps: [
        formatProxyHeaderV2({ address: '2001:db8::7', port: 5555 }, { address: '2001:db8::1', port: 443 }),
      ],
      sees: ['need more', 'admit 2001:db8::7:5555'],
    },
    {
      what: "v2 LOCAL (the balancer's health check) -> the socket's own address is admitted",
      rules: { proxyProtocol: 'v2' },
      steps: [formatProxyHeaderV2(undefined, undefined)],
      sees: ['need more', 'admit 127.0.0.1:40000'],
    },
    {
      what: 'auto, and a dd client without a header -> the socket address is admitted, the bytes are its handshake',
      rules: { proxyProtocol: 'auto' },
      steps: [header(alice), ADMITTED],
      sees: ['need more', 'admit 127.0.0.1:40000', 'identified', 'check replay'],
    },
    {
      what: 'v1 expected, a handshake without a header came -> refused at once, never masked',
      rules: { proxyProtocol: 'v1' },
      steps: [header(alice)],
      sees: ['need more', 'refuse bad_proxy_header'],
    },
    {
      what: 'v2 expected, a malformed v2 header (unknown version) -> refused at once, never masked',
      rules: { proxyProtocol: 'v2' },
      steps: [Buffer.concat([v2.subarray(0, 12), Buffer.from([0x31]), v2.subarray(13)])],
      sees: ['need more', 'refuse bad_proxy_header'],
    },
    {
      what: 'the per-address limit is reached for the address in the header -> refused',
      rules: { proxyProtocol: 'v1' },
      steps: [Buffer.concat([v1, header(alice)]), LIMITED],
      sees: ['need more', 'admit 203.0.113.7:5555', 'refuse per_ip_limit'],
    },
    {
      what: 'a prober behind the balancer -> the mask host gets what it sent, without the balancer header',
      rules: { proxyProtocol: 'auto' },
      steps: [Buffer.concat([v2, garbage(100)]), ADMITTED],
      sees: ['need more', 'admit 203.0.113.7:5555', 'identified', 'fail bad-secret', 'mask 100 bytes'],
    },
  ]);

  it('no PROXY protocol: the socket address is admitted first; refused there, nothing is read', () => {
    expect(connect([]).said).to.deep.equal(['admit 127.0.0.1:40000']);
    expect(connect([LIMITED]).said).to.deep.equal(['admit 127.0.0.1:40000', 'refuse per_ip_limit']);
    expect(connect([ADMITTED]).said).to.deep.equal(['admit 127.0.0.1:40000', 'need more']);
  });
});

describe('handshake: telling fake TLS from obfuscated2', () => {
  const h = hello(alice);
  const dd = header(alice);
  table([
    {
      what: 'an ee client sends its hello -> checked for replay',
      steps: [h],
      sees: ['identified', 'check replay'],
    },
    {
      what: 'the hello in five TCP segments -> more is read until it is whole',
      steps: [h.subarray(0, 1), h.subarray(1, 5), h.subarray(5, 100), h.subarray(100, 400), h.subarray(400)],
      sees: ['need more', 'need more', 'need more', 'need more', 'identified', 'check replay'],
    },
    {
      what: 'the hello split into three TLS records (DPI evasion) -> read as one',
      steps: [splitHelloRecords(h, [100, 200])],
      sees: ['identified', 'check replay'],
    },
    {
      what: 'a dd header in two segments -> more is read until 64 bytes',
      steps: [dd.subarray(0, 30), dd.subarray(30)],
      sees: ['need more', 'identified', 'check replay'],
    },
    {
      what: 'starts with 0x16 but is no hello, plain modes on -> read as an obfuscated2 header (no secret opens it)',
      steps: [garbage(64, 0x16)],
      sees: ['identified', 'fail bad-secret', 'mask 64 bytes'],
    },
    {
      what: 'starts with 0x16 but is no hello, MODES=tls -> not TLS, masked',
      rules: { modes: new Set<ClientMode>(['tls']) },
      steps: [garbage(64, 0x16)],
      sees: ['identified', 'fail not-tls', 'mask 64 bytes'],
    },
    {
      what: 'MODES=tls and a first byte other than 0x16 -> not TLS at once, masked',
      rules: { modes: new Set<ClientMode>(['tls']) },
      steps: [Buffer.from('G')],
      sees: ['identified', 'fail not-tls', 'mask 1 bytes'],
    },
    {
      what: 'fake TLS off: a hello is only 517 bytes of an obfuscated2 header no secret opens',
      rules: { fakeTls: undefined, modes: new Set<ClientMode>(['classic', 'secure']) },
      steps: [h],
      sees: ['identified', 'fail bad-secret', `mask ${h.length} bytes`],
    },
    {
      what: 'more than MAX_HANDSHAKE_BUFFER bytes before any decision -> oversized, masked',
      steps: [Buffer.alloc(MAX_HANDSHAKE_BUFFER + 1, 0x16)],
      sees: ['identified', 'fail oversized', `mask ${MAX_HANDSHAKE_BUFFER + 1} bytes`],
    },
  ]);
});

describe('handshake: plain obfuscated2 (classic and dd secrets)', () => {
  table([
    {
      what: "alice's dd client -> accepted once the replay cache says fresh",
      steps: [header(alice), FRESH],
      sees: ['identified', 'check replay', 'accept alice plain padded dc2'],
    },
    {
      what: "bob's classic client for media DC -4 -> accepted as bob",
      steps: [header(bob, 'intermediate', -4), FRESH],
      sees: ['identified', 'check replay', 'accept bob plain intermediate dc-4'],
    },
    {
      what: 'a secret nobody was given -> bad secret, masked with the 64 bytes',
      steps: [header(stranger)],
      sees: ['identified', 'fail bad-secret', 'mask 64 bytes'],
    },
    {
      what: 'dd with MODES=classic -> transport not allowed, masked',
      rules: { modes: new Set<ClientMode>(['classic']) },
      steps: [header(alice, 'padded')],
      sees: ['identified', 'fail transport-not-allowed', 'mask 64 bytes'],
    },
    {
      what: 'classic intermediate with MODES=secure -> transport not allowed, masked',
      rules: { modes: new Set<ClientMode>(['secure']) },
      steps: [header(alice, 'intermediate')],
      sees: ['identified', 'fail transport-not-allowed', 'mask 64 bytes'],
    },
    {
      what: 'a real client asking for DC 99 -> unknown DC, closed at once (it knows a secret: no mask)',
      steps: [header(alice, 'padded', 99)],
      sees: ['identified', 'fail unknown-dc', 'close handshake-failed'],
    },
  ]);

  it('what follows the header reaches the upstream as `rest`, decryptable where the header left off', () => {
    const client = createClientHeader(clientRandom, alice, 'padded', 2);
    const payload = Buffer.from('first packet');
    const run = connect([ADMITTED, Buffer.concat([client.wire, client.encryptor.update(payload)]), FRESH]);
    const accepted = run.actions.at(-1) as AcceptAction;
    expect(accepted.records).to.equal(undefined);
    expect(accepted.header.decryptor.update(accepted.rest).equals(payload)).to.equal(true);
    expect(run.machine.done).to.equal(true);
  });

  it('the users are read at each handshake: a secret added by a reload opens the next one', () => {
    const before = afterAdmission([header(stranger)]);
    const users = () => ({ secrets: [alice, stranger], names: ['alice', 'carol'] });
    const after = afterAdmission([header(stranger), FRESH], { users });
    expect(before).to.include('fail bad-secret');
    expect(after.at(-1)).to.equal('accept carol plain padded dc2');
  });
});

describe('handshake: the fake-TLS hello', () => {
  const h = hello(alice);
  const otherSite = hello(alice, { domain: 'other.org' });
  table([
    {
      what: "alice's hello, fresh -> our ServerHello, then we read on",
      steps: [h, FRESH],
      sees: ['identified', 'check replay', 'write', 'need more'],
    },
    {
      what: 'a hello without SNI (some apps send none) -> answered',
      steps: [hello(alice, { domain: null }), FRESH],
      sees: ['identified', 'check replay', 'write', 'need more'],
    },
    {
      what: 'signed with a secret nobody was given -> bad MAC, masked with the whole hello',
      steps: [hello(stranger)],
      sees: ['identified', 'fail tls-bad-mac', `mask ${h.length} bytes`],
    },
    {
      what: 'a hello an hour old -> clock skew, masked',
      steps: [hello(alice, { now: NOW - 3600 })],
      sees: ['identified', 'fail tls-clock-skew', `mask ${h.length} bytes`],
    },
    {
      what: 'SNI of another site, UNKNOWN_SNI=mask -> bad SNI, masked (the mask host can front it)',
      steps: [otherSite],
      sees: ['identified', 'fail tls-bad-sni', `mask ${otherSite.length} bytes`],
    },
    {
      what: 'SNI of another site, UNKNOWN_SNI=drop -> bad SNI, held unanswered even with masking on',
      rules: { fakeTls: { ...RULES.fakeTls!, unknownSni: 'drop' } },
      steps: [hello(alice, { domain: 'other.org' })],
      sees: ['identified', 'fail tls-bad-sni', 'hold'],
    },
    {
      what: 'SNI of another site, UNKNOWN_SNI=accept -> answered',
      rules: { fakeTls: { ...RULES.fakeTls!, unknownSni: 'accept' } },
      steps: [hello(alice, { domain: 'other.org' }), FRESH],
      sees: ['identified', 'check replay', 'write', 'need more'],
    },
    {
      what: 'first real cipher suite not TLS 1.3 -> bad cipher suite, masked',
      steps: [helloWithTls12Suite(alice)],
      sees: ['identified', 'fail tls-bad-cipher-suite', `mask ${h.length} bytes`],
    },
    {
      what: 'an authentic hello whose body cannot be read -> malformed, masked',
      steps: [helloUnreadable(alice)],
      sees: ['identified', 'fail tls-malformed', `mask ${helloUnreadable(alice).length} bytes`],
    },
  ]);

  it('the replay key is the first 16 bytes of the client random, and the answer passes the client check', () => {
    const client = buildClientHello({ secret: bob, domain: 'example.com', now: NOW, random: clientRandom });
    const run = connect([ADMITTED, client.hello, FRESH]);
    const check = run.actions.find((a) => a.type === 'check-replay');
    expect(check).to.deep.include({ key: client.clientRandom.subarray(0, 16) });
    const write = run.actions.find((a) => a.type === 'write');
    expect(verifyServerHello(write!.bytes, client.clientRandom, bob)).to.deep.include({ kind: 'ok' });
  });
});

describe('handshake: inside fake TLS, after our ServerHello', () => {
  const h = hello(alice);
  const asked = ['identified', 'check replay', 'write', 'need more'];
  table([
    {
      what: 'the inner dd header in records -> checked for replay too, then accepted as alice over TLS',
      steps: [h, FRESH, records(header(alice)), FRESH],
      sees: [...asked, 'check replay', 'accept alice tls padded dc2'],
    },
    {
      what: 'the records in the same segment as the hello -> answered and checked in one go',
      steps: [Buffer.concat([h, records(header(alice))]), FRESH, FRESH],
      sees: ['identified', 'check replay', 'write', 'check replay', 'accept alice tls padded dc2'],
    },
    {
      what: 'the records a byte at a time at first -> more is read until the header is whole',
      steps: [h, FRESH, records(header(alice)).subarray(0, 3), records(header(alice)).subarray(3, 9), FRESH],
      sees: [...asked, 'need more', 'need more'],
    },
    {
      what: 'intermediate inside TLS with MODES=tls,secure -> transport not allowed, held (we already answered)',
      rules: { modes: new Set<ClientMode>(['tls', 'secure']) },
      steps: [h, FRESH, records(header(alice, 'intermediate'))],
      sees: [...asked, 'fail transport-not-allowed', 'hold'],
    },
    {
      what: 'intermediate inside TLS with classic on -> accepted',
      steps: [h, FRESH, records(header(alice, 'intermediate')), FRESH],
      sees: [...asked, 'check replay', 'accept alice tls intermediate dc2'],
    },
    {
      what: "an inner header made with bob's secret after alice's hello -> bad secret, held",
      steps: [h, FRESH, records(header(bob))],
      sees: [...asked, 'fail bad-secret', 'hold'],
    },
    {
      what: 'DC 99 inside TLS -> unknown DC, closed at once',
      steps: [h, FRESH, records(header(alice, 'padded', 99))],
      sees: [...asked, 'fail unknown-dc', 'close handshake-failed'],
    },
    {
      what: 'bytes that are not TLS records after our answer -> bad records, held',
      steps: [h, FRESH, Buffer.from('GET / HTTP/1.1\r\n\r\n')],
      sees: [...asked, 'fail tls-bad-records', 'hold'],
    },
  ]);

  it('the upstream gets the record reader, the SNI and the bytes after the inner header', () => {
    const client = createClientHeader(clientRandom, alice, 'padded', 2);
    const payload = Buffer.from('first packet');
    const inner = records(Buffer.concat([client.wire, client.encryptor.update(payload)]));
    const run = connect([ADMITTED, h, FRESH, inner, FRESH]);
    const accepted = run.actions.at(-1) as AcceptAction;
    expect(accepted).to.deep.include({ sni: 'example.com', user: 'alice', framing: 'tls' });
    expect(accepted.records).to.not.equal(undefined);
    expect(accepted.header.decryptor.update(accepted.rest).equals(payload)).to.equal(true);
  });
});

describe('handshake: the per-source throttle of failed handshakes', () => {
  /** A throttle that answers `plan` and notes what the handshake told it. */
  function throttle(plan: TrialPlan): TrialThrottle & { told: string[] } {
    const told: string[] = [];
    return {
      told,
      plan: (address) => {
        told.push(`plan ${address}`);
        return plan;
      },
      matched: (address, index) => told.push(`matched ${address} ${index}`),
      failed: (address) => told.push(`failed ${address}`),
    };
  }
  const full = (first?: number): TrialPlan => ({ kind: 'full', first });
  const spent = (first?: number): TrialPlan => ({ kind: 'remembered-only', first });
  // [the client, its source's plan, what happens next, what the throttle is told after the plan]
  const rows: [string, TrialPlan, Buffer, string, string[]][] = [
    [
      'budget left, a secret nobody was given -> a full trial fails and is counted',
      full(),
      header(stranger),
      'fail bad-secret',
      ['failed 127.0.0.1'],
    ],
    [
      "budget left, bob's hello with alice remembered first -> bob matches",
      full(0),
      hello(bob),
      'check replay',
      ['matched 127.0.0.1 1'],
    ],
    [
      'budget spent, nothing remembered -> throttled before any crypto, masked like any bad handshake',
      spent(),
      hello(alice),
      'fail throttled',
      [],
    ],
    [
      'budget spent, bob remembered, bob behind the same NAT -> still gets through',
      spent(1),
      hello(bob),
      'check replay',
      ['matched 127.0.0.1 1'],
    ],
    [
      'budget spent, bob remembered, alice from there -> throttled (only one secret is tried)',
      spent(1),
      hello(alice),
      'fail throttled',
      [],
    ],
    [
      "budget spent, alice remembered, alice's dd header -> gets through",
      spent(0),
      header(alice),
      'check replay',
      ['matched 127.0.0.1 0'],
    ],
    [
      "budget spent, bob remembered, alice's dd header -> throttled",
      spent(1),
      header(alice),
      'fail throttled',
      [],
    ],
    [
      'budget spent, the remembered secret was removed by a reload -> throttled',
      spent(5),
      hello(alice),
      'fail throttled',
      [],
    ],
  ];
  for (const [what, plan, client, next, told] of rows) {
    it(what, () => {
      const t = throttle(plan);
      const said = afterAdmission([client], { throttle: t });
      expect(said.slice(0, 2)).to.deep.equal(['identified', next]);
      if (next.startsWith('fail')) expect(said.slice(2)).to.deep.equal([`mask ${client.length} bytes`]);
      expect(t.told).to.deep.equal(['plan 127.0.0.1', ...told]);
    });
  }

  it("behind a load balancer the budget is the header's source address, not the balancer's", () => {
    const t = throttle({ kind: 'full', first: undefined });
    connect([Buffer.concat([v1, header(stranger)]), ADMITTED], { proxyProtocol: 'v1', throttle: t });
    expect(t.told).to.deep.equal(['plan 203.0.113.7', 'failed 203.0.113.7']);
  });
});

describe('handshake: the replay cache at each of its three checks', () => {
  const h = hello(alice);
  const points = [
    { point: 'a dd header', steps: [header(alice)], after: ['mask 64 bytes'] },
    { point: 'a fake-TLS hello', steps: [h], after: [`mask ${h.length} bytes`] },
    // After our ServerHello the client has seen a proxy: nothing is masked any more.
    { point: 'the header inside TLS', steps: [h, FRESH, records(header(alice))], after: ['hold'] },
  ];
  const outcomes: [ReplayOutcome, string][] = [
    ['replay', 'replay'],
    ['full', 'replay-cache-full'],
    ['no-answer', 'replay-unanswered'],
  ];
  for (const { point, steps, after } of points) {
    for (const [outcome, reason] of outcomes) {
      it(`${point}, the cache answers "${outcome}" -> fail ${reason}, then ${after[0]!.split(' ')[0]}`, () => {
        const said = afterAdmission([...steps, replay(outcome)]);
        expect(said.slice(-1 - after.length)).to.deep.equal([`fail ${reason}`, ...after]);
      });
    }
  }

  it('the inner header is checked with its own key: a fresh hello carrying a recorded session header is caught', () => {
    const recorded = header(alice);
    const plain = connect([ADMITTED, recorded]).actions.find((a) => a.type === 'check-replay');
    const inner = connect([ADMITTED, h, FRESH, records(recorded)]).actions.filter(
      (a) => a.type === 'check-replay',
    );
    expect(inner).to.have.length(2);
    expect(inner[1]).to.deep.equal(plain);
  });
});

describe('handshake: deadlines at each stage', () => {
  const h = hello(alice);
  table([
    {
      what: 'reading the PROXY header -> timeout, masked with the partial bytes',
      rules: { proxyProtocol: 'v1' },
      steps: [v1.subarray(0, 10), TIMEOUT],
      sees: ['need more', 'need more', 'identified', 'fail timeout', 'mask 10 bytes'],
    },
    {
      what: 'a silent client -> timeout, masked (the mask host answers a silent client too)',
      steps: [TIMEOUT],
      sees: ['identified', 'fail timeout', 'mask 0 bytes'],
    },
    {
      what: 'a partial hello -> timeout, masked with the bytes sent so far',
      steps: [h.subarray(0, 100), TIMEOUT],
      sees: ['need more', 'identified', 'fail timeout', 'mask 100 bytes'],
    },
    {
      what: 'a silent client with masking off -> timeout, held',
      rules: { masking: false },
      steps: [TIMEOUT],
      sees: ['identified', 'fail timeout', 'hold'],
    },
    {
      what: 'waiting for the replay cache -> timeout, closed now',
      steps: [h, TIMEOUT],
      sees: ['identified', 'check replay', 'fail timeout', 'close handshake-failed'],
    },
    {
      what: 'after our ServerHello, no inner header -> timeout, closed now',
      steps: [h, FRESH, TIMEOUT],
      sees: ['identified', 'check replay', 'write', 'need more', 'fail timeout', 'close handshake-failed'],
    },
    {
      what: 'waiting for the replay cache on the inner header -> timeout, closed now',
      steps: [h, FRESH, records(header(alice)), TIMEOUT],
      sees: [
        'identified',
        'check replay',
        'write',
        'need more',
        'check replay',
        'fail timeout',
        'close handshake-failed',
      ],
    },
    {
      what: 'after the client was accepted -> nothing (the session has its own clocks)',
      steps: [header(alice), FRESH, TIMEOUT],
      sees: ['identified', 'check replay', 'accept alice plain padded dc2'],
    },
  ]);
});

describe('handshake: the client half-closes at each stage', () => {
  const h = hello(alice);
  table([
    {
      what: 'while sending the PROXY header -> closed',
      rules: { proxyProtocol: 'v1' },
      steps: [v1.subarray(0, 10), HALF_CLOSED],
      sees: ['need more', 'need more', 'close client-closed'],
    },
    {
      what: 'before sending anything -> closed',
      steps: [HALF_CLOSED],
      sees: ['close client-closed'],
    },
    {
      what: 'a prober that sent a partial request and shut down its side -> still gets the mask host',
      steps: [Buffer.from('GET /'), HALF_CLOSED],
      sees: ['need more', 'identified', 'fail client-closed', 'mask 5 bytes'],
    },
    {
      what: 'while the replay cache is asked -> closed',
      steps: [h, HALF_CLOSED],
      sees: ['identified', 'check replay', 'close client-closed'],
    },
    {
      what: 'after our ServerHello -> closed',
      steps: [h, FRESH, HALF_CLOSED],
      sees: ['identified', 'check replay', 'write', 'need more', 'close client-closed'],
    },
    {
      what: 'after it was masked -> nothing more from the handshake (the mask relay forwards it)',
      steps: [header(stranger), HALF_CLOSED],
      sees: ['identified', 'fail bad-secret', 'mask 64 bytes'],
    },
  ]);
});

describe('handshake: the cap on unidentified handshakes', () => {
  table([
    {
      what: 'the oldest silent connection is evicted -> throttled, masked',
      steps: [EVICTED],
      sees: ['identified', 'fail throttled', 'mask 0 bytes'],
    },
    {
      what: 'evicted while sending its PROXY header -> throttled, masked with the bytes so far',
      rules: { proxyProtocol: 'v1' },
      steps: [v1.subarray(0, 10), EVICTED],
      sees: ['need more', 'need more', 'identified', 'fail throttled', 'mask 10 bytes'],
    },
    {
      what: 'an eviction after the handshake was identified -> nothing (it left the cap then)',
      steps: [header(alice), EVICTED, FRESH],
      sees: ['identified', 'check replay', 'accept alice plain padded dc2'],
    },
  ]);
});

describe('handshake: what becomes of a failed connection (failure policies)', () => {
  const h = hello(alice);
  const policies: {
    what: string;
    steps: Step[];
    rules?: Partial<HandshakeRules>;
    masking: string;
    without: string;
  }[] = [
    {
      what: 'a bad handshake before we answered',
      steps: [header(stranger)],
      masking: 'mask',
      without: 'hold',
    },
    { what: 'a silent client at the deadline', steps: [TIMEOUT], masking: 'mask', without: 'hold' },
    {
      what: 'a bad SNI with UNKNOWN_SNI=drop',
      steps: [hello(alice, { domain: 'other.org' })],
      rules: { fakeTls: { ...RULES.fakeTls!, unknownSni: 'drop' } },
      masking: 'hold',
      without: 'hold',
    },
    {
      what: 'a replay after our ServerHello',
      steps: [h, FRESH, records(header(alice)), replay('replay')],
      masking: 'hold',
      without: 'hold',
    },
    {
      what: 'bad records after our ServerHello',
      steps: [h, FRESH, Buffer.alloc(10, 0x15)],
      masking: 'hold',
      without: 'hold',
    },
    {
      what: 'a client that knows a secret asking for DC 99',
      steps: [header(alice, 'padded', 99)],
      masking: 'close',
      without: 'close',
    },
    {
      what: 'a deadline while the replay cache is asked',
      steps: [h, TIMEOUT],
      masking: 'close',
      without: 'close',
    },
  ];
  for (const p of policies) {
    it(`${p.what} -> ${p.masking} with a mask host, ${p.without} without`, () => {
      const last = (masking: boolean) =>
        afterAdmission(p.steps, { ...p.rules, masking })
          .at(-1)!
          .split(' ')[0];
      expect(last(true)).to.equal(p.masking);
      expect(last(false)).to.equal(p.without);
    });
  }

  it('a held connection is closed between half and one and a half handshake timeouts, at random', () => {
    const delays = Array.from({ length: 50 }, (_, i) => {
      const run = connect([ADMITTED, header(stranger)], {
        masking: false,
        random: seededRandom(`hold ${i}`),
      });
      const hold = run.actions.at(-1)!;
      return hold.type === 'hold' ? hold.ms : Number.NaN;
    });
    for (const ms of delays) expect(ms).to.be.within(TIMEOUT_MS / 2, TIMEOUT_MS * 1.5);
    expect(new Set(delays).size).to.be.greaterThan(40);
  });

  it('once decided, the machine lets go of what it read and ignores whatever comes next', () => {
    const run = connect([ADMITTED, header(stranger)]);
    expect(run.machine.done).to.equal(true);
    for (const event of [TIMEOUT, HALF_CLOSED, EVICTED, FRESH, ADMITTED])
      expect(run.machine.step(event)).to.deep.equal([]);
    expect(run.machine.step({ kind: 'bytes', chunk: header(alice) })).to.deep.equal([]);
  });
});
