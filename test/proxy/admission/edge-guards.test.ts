import { expect } from 'chai';
import { ConnectionsPerIp, limitKey } from '../../../proxy/src/admission/ip-limit.js';
import { checkMaskTarget, isSelfTarget, type SelfEndpoints } from '../../../proxy/src/masking/mask-relay.js';

const SELF: SelfEndpoints = { addresses: new Set(['10.0.0.5', '203.0.113.9']), ports: new Set([443, 8443]) };

describe('mask target loop check', () => {
  it('a target on one of our ports at one of our addresses, loopback or any-address is us', () => {
    for (const address of [
      '10.0.0.5',
      '203.0.113.9',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '0.0.0.0',
      '::',
      '::ffff:10.0.0.5',
    ]) {
      expect(isSelfTarget(address, 443, SELF), address).to.equal(true);
    }
    expect(isSelfTarget('127.0.0.1', 8443, SELF)).to.equal(true);
  });

  it('another port on our machine, or another machine on our port, is not us', () => {
    expect(isSelfTarget('127.0.0.1', 8080, SELF)).to.equal(false);
    expect(isSelfTarget('198.51.100.1', 443, SELF)).to.equal(false);
  });

  it('checkMaskTarget refuses an IP literal that is us, without any DNS query, and passes another', async () => {
    const self = await checkMaskTarget({ host: '127.0.0.1', port: 443 }, SELF);
    expect(self.ok).to.equal(false);
    expect(self.ok ? '' : self.reason).to.equal('self');
    const other = await checkMaskTarget({ host: '127.0.0.1', port: 9 }, SELF);
    expect(other).to.deep.equal({ ok: true, address: '127.0.0.1' });
  });
});

describe('per-address connection limit', () => {
  it('lets an address hold N connections, refuses the next, and frees a slot on release', () => {
    const limit = new ConnectionsPerIp(2);
    const a = limit.acquire('198.51.100.7');
    const b = limit.acquire('::ffff:198.51.100.7');
    expect(a).to.be.a('function');
    expect(b).to.be.a('function');
    expect(limit.acquire('198.51.100.7')).to.equal(undefined);
    expect(limit.acquire('198.51.100.8')).to.be.a('function');
    a!();
    a!(); // releasing twice frees one slot only
    expect(limit.acquire('198.51.100.7')).to.be.a('function');
    expect(limit.acquire('198.51.100.7')).to.equal(undefined);
  });

  it('counts IPv6 clients per /64', () => {
    expect(limitKey('2001:db8:1:2::1')).to.equal(limitKey('2001:db8:1:2:ffff:1:2:3'));
    expect(limitKey('2001:db8:1:2::1')).to.not.equal(limitKey('2001:db8:1:3::1'));
    expect(limitKey('::1')).to.equal('0:0:0:0::/64');
    const limit = new ConnectionsPerIp(1);
    expect(limit.acquire('2001:db8:1:2::1')).to.be.a('function');
    expect(limit.acquire('2001:db8:1:2::99')).to.equal(undefined);
  });

  it('0 means no limit and keeps no state', () => {
    const limit = new ConnectionsPerIp(0);
    for (let i = 0; i < 100; i++) expect(limit.acquire('198.51.100.7')).to.be.a('function');
    expect(limit.size).to.equal(0);
  });
});
