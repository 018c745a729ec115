// The attacker of `npm run bench -- --attack`, run as its own process pinned to one CPU: opens
// connections to the proxy from 127.0.0.2..5 as fast as that CPU allows, each sending one garbage
// handshake (64 random bytes, or a well-framed TLS ClientHello made with a wrong secret) and then
// closing, with at most IN_FLIGHT connections open at once. Prints one JSON line with its counts
// when told to stop (SIGTERM) or when the duration is over.
//
//   ATTACK_KIND=mixed|o2|tls node --import tsx bench/attack-flood.ts PORT SECONDS
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { buildClientHello } from '../proxy/src/fake-tls/client.js';

const port = Number(process.argv[2]);
const seconds = Number(process.argv[3] ?? '10');
const IN_FLIGHT = 256;
/** What to send: `mixed` (default) alternates; `o2` or `tls` only one kind (ATTACK_KIND). */
const KIND = process.env.ATTACK_KIND ?? 'mixed';
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
/** A few wrong-secret hellos made up front: building one costs the attacker more than sending it. */
const HELLOS = Array.from(
  { length: 16 },
  () =>
    buildClientHello({
      secret: randomBytes(16),
      domain: 'bench.example',
      now: Math.floor(Date.now() / 1000),
      random: randomBytes,
    }).hello,
);

const counts = { opened: 0, failedToConnect: 0 };
let open = 0;
let next = 0;
const deadline = Date.now() + seconds * 1000;
let stopping = false;

function one(): void {
  if (stopping || Date.now() > deadline) return;
  open++;
  counts.opened++;
  const i = next++;
  const s = connect({ host: '127.0.0.1', port, localAddress: SOURCES[i % SOURCES.length] });
  s.on('error', () => {});
  s.once('connect', () => {
    const tls = KIND === 'tls' || (KIND === 'mixed' && i % 2 === 1);
    s.end(tls ? HELLOS[i % HELLOS.length]! : randomBytes(64));
    // Not waiting for the proxy's verdict: a flood never does.
    setTimeout(() => s.destroy(), 20);
  });
  s.once('close', (hadError) => {
    if (hadError && s.bytesWritten === 0) counts.failedToConnect++;
    open--;
    setImmediate(fill);
  });
}

function fill(): void {
  while (open < IN_FLIGHT && !stopping && Date.now() <= deadline) one();
  if ((stopping || Date.now() > deadline) && open === 0) finish();
}

function finish(): void {
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  process.exit(0);
}

process.once('SIGTERM', () => {
  stopping = true;
  setTimeout(finish, 200);
});
fill();
setTimeout(
  () => {
    stopping = true;
    setTimeout(finish, 500);
  },
  seconds * 1000 + 100,
).unref();
