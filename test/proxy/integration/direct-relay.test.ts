import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { expect } from 'chai';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';
import { gramjsHandshakeViaProxy } from '../../support/telegram-client.js';

const ALICE = '00112233445566778899aabbccddeeff';
const BOB = 'ffeeddccbbaa99887766554433221100';

describe('direct mode: real clients through the proxy to stand-in DCs', function () {
  this.timeout(60_000);
  let dc2: StandinDc;
  let dc4: StandinDc;
  let proxy: ProxyProcess;

  before(async () => {
    dc2 = await startStandinDc();
    dc4 = await startStandinDc();
    proxy = await startProxy({
      env: {
        SECRET: `${ALICE},${BOB}`,
        WORKERS: '2',
        DC_ADDRS: `2=127.0.0.1:${dc2.port},4=127.0.0.1:${dc4.port}`,
        HANDSHAKE_TIMEOUT: '2',
      },
    });
  });
  after(async () => {
    await proxy?.stop();
    await dc2?.stop();
    await dc4?.stop();
  });

  it('gramjs with a plain secret gets its resPQ and goes on to req_DH_params', async () => {
    const msg = await gramjsHandshakeViaProxy({ dc: dc2, proxyPort: proxy.port, secret: ALICE, dcId: 2 });
    expect(msg.nonce).to.be.instanceOf(Buffer);
  });

  it('gramjs with a dd secret of the second user gets through too', async () => {
    const msg = await gramjsHandshakeViaProxy({
      dc: dc2,
      proxyPort: proxy.port,
      secret: `dd${BOB}`,
      dcId: 2,
    });
    expect(msg.nonce).to.be.instanceOf(Buffer);
  });

  it('gramjs asking for DC 4 reaches the DC 4 stand-in', async () => {
    await gramjsHandshakeViaProxy({ dc: dc4, proxyPort: proxy.port, secret: ALICE, dcId: 4 });
  });

  it('a client asking for media DC -4 reaches the DC 4 stand-in', async () => {
    // gramjs writes the DC index as one byte, so media DCs are tested with our raw client, which
    // writes the signed 16-bit index as tdlib does.
    const before = dc4.stats.connections;
    const client = await Obfs2Client.connect({ port: proxy.port, secret: Buffer.from(ALICE, 'hex'), dc: -4 });
    try {
      client.send(Buffer.alloc(16, 9));
      expect((await client.receive()).payload.equals(Buffer.alloc(16, 9))).to.equal(true);
      expect(dc4.stats.connections).to.equal(before + 1);
    } finally {
      client.close();
    }
  });

  for (const transport of ['abridged', 'intermediate', 'padded'] as const) {
    it(`relays ${transport} packets byte for byte in both directions, large and small`, async () => {
      const client = await Obfs2Client.connect({
        port: proxy.port,
        secret: Buffer.from(ALICE, 'hex'),
        transport,
        dc: 2,
      });
      try {
        for (const size of [4, 256, 16 * 1024, 200 * 1024]) {
          const payload = randomBytes(size);
          payload.writeUInt32LE(0x01020304, 0); // not an unencrypted auth message
          client.send(payload);
          const echoed = await client.receive(10_000);
          expect(echoed.payload.equals(payload), `${size} bytes`).to.equal(true);
        }
      } finally {
        client.close();
      }
    });
  }

  it('many clients at once each get their own bytes back', async () => {
    const clients = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        Obfs2Client.connect({
          port: proxy.port,
          secret: Buffer.from(i % 2 ? ALICE : BOB, 'hex'),
          transport: 'intermediate',
          dc: 2,
        }),
      ),
    );
    try {
      const payloads = clients.map(() => randomBytes(1024));
      for (const [i, c] of clients.entries()) c.send(payloads[i]!);
      const echoes = await Promise.all(clients.map((c) => c.receive(10_000)));
      for (const [i, e] of echoes.entries()) expect(e.payload.equals(payloads[i]!)).to.equal(true);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('refuses a client with an unknown secret without reaching any DC, and keeps serving others', async () => {
    const before = dc2.stats.connections + dc4.stats.connections;
    const stranger = await Obfs2Client.connect({
      port: proxy.port,
      secret: randomBytes(16),
      transport: 'intermediate',
      dc: 2,
    });
    stranger.send(randomBytes(64));
    await stranger.waitForClose(5_000);
    expect(dc2.stats.connections + dc4.stats.connections).to.equal(before);
    await gramjsHandshakeViaProxy({ dc: dc2, proxyPort: proxy.port, secret: ALICE, dcId: 2 });
  });

  it('refuses a DC id it does not know', async () => {
    const before = dc2.stats.connections;
    const client = await Obfs2Client.connect({ port: proxy.port, secret: Buffer.from(ALICE, 'hex'), dc: 77 });
    await client.waitForClose(5_000);
    expect(dc2.stats.connections).to.equal(before);
  });

  it('refuses a replayed header', async () => {
    const first = await Obfs2Client.connect({ port: proxy.port, secret: Buffer.from(ALICE, 'hex'), dc: 2 });
    const header = first.header;
    first.send(Buffer.alloc(8, 1));
    await first.receive();
    first.close();
    const before = dc2.stats.connections;
    // Same 64 bytes again: with two workers the copy may land on either; each remembers its own.
    const results = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise<boolean>((resolve) => {
            const s = connect(proxy.port, '127.0.0.1', () => s.write(header));
            s.on('close', () => resolve(true));
            setTimeout(() => {
              s.destroy();
              resolve(false);
            }, 4_000);
          }),
      ),
    );
    expect(results.every(Boolean), 'every replay was closed').to.equal(true);
    expect(dc2.stats.connections, 'no replay reached the DC').to.equal(before);
  });

  it('closes a client that sends garbage at the handshake deadline, and nobody else notices', async () => {
    const garbage = connect(proxy.port, '127.0.0.1');
    garbage.write(randomBytes(500));
    const started = Date.now();
    await new Promise((r) => garbage.on('close', r));
    expect(Date.now() - started).to.be.within(1_000, 5_000);
    await gramjsHandshakeViaProxy({ dc: dc2, proxyPort: proxy.port, secret: ALICE, dcId: 2 });
  });
});
