// Middle mode's clock check (docs/protocol.md §6.11) and the choice of middle-proxy families
// (MIDDLE_IPV6): pure functions, the times and lists in, the verdict and the pool's targets out.
import { expect } from 'chai';
import { checkClock } from '../../../proxy/src/middle/clock.js';
import type { MiddleProxyConfig } from '../../../proxy/src/middle/codec/proxy-config.js';
import { middleTargets } from '../../../proxy/src/middle/families.js';

const T = Date.parse('2026-12-06T01:00:00.000Z');
const httpDate = (ms: number): string => new Date(ms).toUTCString();
const observe = (dateHeader: string | undefined, sentAtMs = T, receivedAtMs = T + 40) => ({
  source: 'https://core.telegram.org/getProxyConfig',
  dateHeader,
  sentAtMs,
  receivedAtMs,
});

describe('middle mode: the clock check against the Date header of a config fetch', () => {
  it('a clock that agrees with Telegram is ok, with the skew measured to within the second the header rounds to', () => {
    const check = checkClock(observe(httpDate(T)));
    expect(check.state).to.equal('ok');
    expect(Math.abs(check.skewSeconds!)).to.be.below(1);
    expect(check.uncertaintySeconds).to.be.closeTo(0.52, 0.001);
    expect(check.checkedAt).to.equal(Math.floor((T + 40) / 1000));
  });

  it('a clock 45 s ahead of Telegram is skewed, and the sign says which way', () => {
    const ahead = checkClock(observe(httpDate(T - 45_000)));
    expect(ahead.state).to.equal('skewed');
    expect(ahead.skewSeconds).to.be.closeTo(44.5, 0.1);
    const behind = checkClock(observe(httpDate(T + 45_000)));
    expect(behind.state).to.equal('skewed');
    expect(behind.skewSeconds).to.be.closeTo(-45.5, 0.1);
  });

  it('does not call a clock skewed while the request took long enough to explain the difference', () => {
    // 31 s off, but the answer took 4 s: Telegram's reading may be up to 2.5 s off the midpoint.
    const slow = checkClock(observe(httpDate(T + 2000 - 31_000), T, T + 4000));
    expect(slow.state).to.equal('ok');
    expect(slow.skewSeconds).to.be.closeTo(30.5, 0.1);
  });

  it('says unknown, and why, without a usable Date header or when our clock stepped back', () => {
    expect(checkClock(observe(undefined))).to.include({
      state: 'unknown',
      reason: 'the answer has no Date header',
    });
    expect(checkClock(observe('yesterday')).reason).to.match(/not an HTTP date/);
    expect(checkClock(observe('2026-12-06T01:00:00+05:00')).state).to.equal('unknown');
    expect(checkClock(observe(httpDate(T), T, T - 5)).reason).to.match(/went back/);
  });
});

const list = (entries: [number, string][]): MiddleProxyConfig => ({
  defaultDc: 2,
  targets: new Map(entries.map(([dc, host]) => [dc, [{ host, port: 8888 }]] as const)),
  timeoutMs: 300,
  minConnections: 4,
  maxConnections: 8,
});
const v4 = list([
  [2, '149.154.161.144'],
  [4, '91.108.4.136'],
]);
const v6 = list([
  [2, '2001:67c:4e8:f002::d'],
  [5, '2001:b28:f23f:f005::d'],
]);

describe('middle mode: IPv4 and IPv6 middle proxies in the pool (MIDDLE_IPV6)', () => {
  it('off uses the IPv4 list, even when an IPv6 list was read', () => {
    expect(middleTargets(v4, v6, 'off')).to.equal(v4);
  });

  it('only uses the IPv6 list, for hosts without IPv4', () => {
    expect(middleTargets(v4, v6, 'only')).to.equal(v6);
  });

  it('on puts both families of every DC in its cluster', () => {
    const both = middleTargets(v4, v6, 'on');
    expect([...both.targets.keys()].sort()).to.deep.equal([2, 4, 5]);
    expect(both.targets.get(2)!.map((t) => t.host)).to.deep.equal([
      '149.154.161.144',
      '2001:67c:4e8:f002::d',
    ]);
    expect(both.targets.get(4)!.map((t) => t.host)).to.deep.equal(['91.108.4.136']);
    expect(both.targets.get(5)!.map((t) => t.host)).to.deep.equal(['2001:b28:f23f:f005::d']);
    expect(both.defaultDc).to.equal(2);
  });

  it('without an IPv6 list, every setting falls back to the IPv4 list', () => {
    expect(middleTargets(v4, undefined, 'on')).to.equal(v4);
    expect(middleTargets(v4, undefined, 'only')).to.equal(v4);
  });
});
