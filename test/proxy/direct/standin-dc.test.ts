// The integration harness, proved without our proxy: raw obfuscated2 clients and gramjs talk to
// the stand-in DC directly, the way our proxy will talk to a real one.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { expect } from 'chai';
import type { Transport } from '../../../proxy/src/protocol/obfuscated2.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import {
  PRODUCTION_KEY_FINGERPRINT,
  parseResPq,
  reqPqMultiMessage,
  type StandinDc,
  startStandinDc,
  TL,
} from '../../support/standin-dc.js';
import { gramjsHandshakeDirect } from '../../support/telegram-client.js';

const TRANSPORTS: readonly Transport[] = ['abridged', 'intermediate', 'padded'];

describe('stand-in DC', () => {
  let dc: StandinDc;
  const clients: Obfs2Client[] = [];

  beforeEach(async () => {
    dc = await startStandinDc();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await dc.stop();
  });

  async function open(transport: Transport): Promise<Obfs2Client> {
    const client = await Obfs2Client.connect({ port: dc.port, secret: null, transport, dc: 2 });
    clients.push(client);
    return client;
  }

  for (const transport of TRANSPORTS) {
    it(`${transport}: a client asking for req_pq_multi gets a resPQ with its nonce and a key gramjs knows`, async () => {
      const client = await open(transport);
      const nonce = randomBytes(16);
      client.send(reqPqMultiMessage(nonce));
      const resPq = parseResPq((await client.receive()).payload);
      expect(resPq, 'a resPQ').to.not.equal(undefined);
      expect(resPq!.nonce.equals(nonce)).to.equal(true);
      expect(resPq!.pq.toString('hex')).to.equal('17ed48941a08f981');
      expect(resPq!.fingerprints).to.deep.equal([PRODUCTION_KEY_FINGERPRINT]);
      expect(dc.messages.map((m) => [m.constructorId, m.nonce?.toString('hex')])).to.deep.equal([
        [TL.reqPqMulti, nonce.toString('hex')],
      ]);
      expect(dc.answered[0]!.serverNonce.equals(resPq!.serverNonce)).to.equal(true);
      expect(dc.connections.map((c) => [c.transport, c.dcField])).to.deep.equal([[transport, 2]]);
    });

    it(`${transport}: any other packet comes back byte for byte, and the traffic is counted`, async () => {
      const client = await open(transport);
      const payloads = [randomBytes(4), randomBytes(508), randomBytes(70_000)];
      for (const p of payloads) client.send(p);
      for (const p of payloads) expect((await client.receive()).payload.equals(p)).to.equal(true);
      expect(dc.stats).to.include({ connections: 1, open: 1, packets: 3, echoed: 3 });
      const sent = 64 + payloads.reduce((n, p) => n + p.length, 0);
      expect(dc.stats.bytesIn).to.be.within(sent, sent + 3 * 7);
      expect(dc.stats.bytesOut).to.be.within(sent - 64, sent - 64 + 3 * 7);
    });
  }

  it('closes a connection whose header carries no known protocol tag', async () => {
    const socket = connect({ host: '127.0.0.1', port: dc.port });
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(Buffer.alloc(64, 1));
    await closed;
    expect(dc.stats.rejected).to.equal(1);
    expect(dc.connections).to.have.length(0);
  });

  it('stop() closes the connections that are still open', async () => {
    const client = await open('intermediate');
    client.send(randomBytes(8));
    await client.receive();
    await dc.stop();
    await client.waitForClose(2000);
    expect(dc.stats.open).to.equal(0);
  });

  it('gramjs, connecting directly, accepts the resPQ and goes on to req_DH_params with its nonce', async () => {
    const dh = await gramjsHandshakeDirect({ dc, timeoutMs: 15_000 });
    expect(dh.constructorId).to.equal(TL.reqDhParams);
    const pq = dc.messages.find((m) => m.constructorId === TL.reqPqMulti);
    expect(pq?.nonce?.equals(dh.nonce!)).to.equal(true);
    expect(dc.connections[0]!.transport).to.equal('abridged');
  });
});
