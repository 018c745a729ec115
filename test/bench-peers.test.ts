// How a user names peer proxies for `npm run bench`: --peer 'NAME:KIND=COMMAND', BENCH_PEERS
// (one per line) or the older BENCH_PEER_PROXY; a mistake is refused with what to write instead.
import { expect } from 'chai';
import { collectPeers, expandCommand, PeerSpecError, parsePeerSpec } from '../bench/peers.js';

describe('the benchmark: peers a user points it at', () => {
  it('reads a name, a kind and the command, which may hold colons and equals signs', () => {
    expect(
      parsePeerSpec('mtg:tls=/opt/mtg/mtg simple-run 127.0.0.1:{PORT} {TLS_SECRET} -t a=b'),
    ).to.deep.equal({
      name: 'mtg',
      kind: 'tls',
      command: '/opt/mtg/mtg simple-run 127.0.0.1:{PORT} {TLS_SECRET} -t a=b',
    });
  });

  it('refuses an unknown kind, a missing command and names the benchmark uses itself', () => {
    expect(() => parsePeerSpec('mtg:fast=/bin/true')).to.throw(PeerSpecError, /direct, middle, tls/);
    expect(() => parsePeerSpec('mtg:tls=')).to.throw(PeerSpecError, /NAME:KIND=COMMAND/);
    expect(() => parsePeerSpec('/usr/bin/mtg run')).to.throw(PeerSpecError, /NAME:KIND=COMMAND/);
    expect(() => parsePeerSpec('mtkube:direct=/bin/true')).to.throw(PeerSpecError, /taken/);
  });

  it('takes peers from the arguments, BENCH_PEERS lines and BENCH_PEER_PROXY, each once', () => {
    const peers = collectPeers(['c:middle=/c -H {PORT}'], {
      BENCH_PEERS: 'py:direct=python3 p.py\n\npy:middle=python3 p.py\n',
      BENCH_PEER_PROXY: '/old/peer',
    });
    expect(peers.map((p) => `${p.name}:${p.kind}`)).to.deep.equal([
      'c:middle',
      'py:direct',
      'py:middle',
      'peer:direct',
    ]);
    expect(() => collectPeers(['a:tls=x', 'a:tls=y'], {})).to.throw(PeerSpecError, /twice/);
  });

  it('puts the variables into the command and leaves unknown braces alone', () => {
    expect(expandCommand('run -p {PORT} -S {SECRET} {OTHER}', { PORT: '443', SECRET: 'ab' })).to.equal(
      'run -p 443 -S ab {OTHER}',
    );
  });
});
