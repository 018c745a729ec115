import { expect } from 'chai';
import { resolveDc } from '../../../proxy/src/direct/dc-table.js';
import { loadVectors } from '../../support/vectors.js';

const constants = loadVectors<{ dc_v4_direct: Record<string, string>; dc_v6_direct: Record<string, string> }>(
  'constants.json',
);
const none = { overrides: new Map(), preferIpv6: false };

/** The vectors write IPv6 with leading zeros in groups (04e8); compare addresses, not spellings. */
const canonical = (host: string) => host.replace(/(^|:)0+([0-9a-f])/g, '$1$2');

describe('data centre addresses', () => {
  for (const id of ['1', '2', '3', '4', '5']) {
    it(`DC ${id} and media DC -${id} resolve to the reference's IPv4 and IPv6 addresses`, () => {
      for (const dc of [Number(id), -Number(id)]) {
        const list = resolveDc(dc, none)!;
        expect(`${list[0]!.host}:${list[0]!.port}`).to.equal(constants.dc_v4_direct[id]);
        expect(`[${list[1]!.host}]:${list[1]!.port}`).to.equal(canonical(constants.dc_v6_direct[id]!));
      }
    });
  }

  it('tries IPv6 first when asked to', () => {
    expect(resolveDc(2, { overrides: new Map(), preferIpv6: true })![0]!.host).to.contain(':');
  });

  it('knows the test DCs (10000 + n)', () => {
    expect(resolveDc(10002, none)![0]!.host).to.equal('149.154.167.40');
  });

  it('refuses DC ids it does not know', () => {
    for (const dc of [0, 6, -6, 999, 10004, 32767, -32768])
      expect(resolveDc(dc, none), String(dc)).to.equal(undefined);
  });

  it('lets an override replace the built-in table, exact id first', () => {
    const overrides = new Map([
      [2, [{ host: '127.0.0.1', port: 7002 }]],
      [-2, [{ host: '127.0.0.1', port: 7003 }]],
    ]);
    expect(resolveDc(2, { overrides, preferIpv6: false })).to.deep.equal([{ host: '127.0.0.1', port: 7002 }]);
    expect(resolveDc(-2, { overrides, preferIpv6: false })).to.deep.equal([
      { host: '127.0.0.1', port: 7003 },
    ]);
    expect(
      resolveDc(7, { overrides: new Map([[7, [{ host: '127.0.0.1', port: 1 }]]]), preferIpv6: false }),
    ).to.have.length(1);
  });
});
