// Proxy pods carry requests and limits the API server accepts, derived from the spec.
import { expect } from 'chai';
import { eventually } from '../cluster/eventually.js';
import { type DeploymentJson, freshTestBedPerTest, type TestBed } from './support/harness.js';

type WithResources = DeploymentJson & {
  spec: { template: { spec: { containers: { resources?: Record<string, Record<string, string>> }[] } } };
};

describe('operator: proxy pod resources', function () {
  this.timeout(60_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('4 workers of 1000 connections get requests and a memory limit; an override lowers the limit', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', { workers: 4, maxConnections: 1000 });
    const resources = async () =>
      (await bed.get<WithResources>('deployment', 'tg')).spec.template.spec.containers[0]!.resources;
    await eventually(async () => {
      expect(await resources()).to.deep.equal({
        requests: { cpu: '400m', memory: '256Mi' },
        limits: { memory: '381Mi' },
      });
    });
    await bed.applyProxy('tg', {
      workers: 4,
      maxConnections: 1000,
      podTemplate: { resources: { limits: { memory: '200Mi' } } },
    });
    await eventually(async () => {
      expect(await resources()).to.deep.equal({
        requests: { cpu: '400m', memory: '200Mi' },
        limits: { memory: '200Mi' },
      });
    });
  });
});
