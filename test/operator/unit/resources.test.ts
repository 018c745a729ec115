// Proxy pods get requests and limits from what the spec lets them carry; the spec can override
// each value.
import { expect } from 'chai';
import { containerResources, deriveResources, memoryBytes } from '../../../operator/src/render/resources.js';

describe('operator: proxy pod resources', () => {
  it('requests a base per worker and limits memory to every worker full of connections', () => {
    // 64 Mi primary + 2 x 48 Mi workers; 2 x 60000 connections x 32 KiB on top for the limit.
    expect(deriveResources(2, 60_000)).to.deep.equal({
      requests: { cpu: '200m', memory: '160Mi' },
      limits: { memory: `${160 + 3750}Mi` },
    });
    expect(deriveResources(1, 1000)).to.deep.equal({
      requests: { cpu: '100m', memory: '112Mi' },
      limits: { memory: '144Mi' },
    });
  });

  it('grows with workers and with connections per worker', () => {
    const mem = (w: number, c: number) => memoryBytes(deriveResources(w, c).limits.memory)!;
    expect(mem(4, 1000)).to.be.above(mem(2, 1000));
    expect(mem(2, 20_000)).to.be.above(mem(2, 1000));
  });

  it('takes any single value from podTemplate.resources', () => {
    expect(containerResources(2, 1000, { requests: { cpu: '1' } })).to.deep.equal({
      requests: { cpu: '1', memory: '160Mi' },
      limits: { memory: '223Mi' },
    });
  });

  it('a memory limit below the derived request pulls the request down, so the API server accepts it', () => {
    expect(containerResources(8, 60_000, { limits: { memory: '256Mi' } })).to.deep.equal({
      requests: { cpu: '800m', memory: '256Mi' },
      limits: { memory: '256Mi' },
    });
  });

  it('a request above the derived limit lifts the limit with it', () => {
    expect(containerResources(1, 100, { requests: { memory: '1Gi' } }).limits.memory).to.equal('1Gi');
  });

  it('reads memory quantities', () => {
    expect(memoryBytes('512Mi')).to.equal(512 * 2 ** 20);
    expect(memoryBytes('1G')).to.equal(1e9);
    expect(memoryBytes(1024)).to.equal(1024);
    expect(memoryBytes('lots')).to.equal(undefined);
  });
});
