import { expect } from 'chai';
import { WORKER_SEMI_SPACE_MB, workerExecArgv } from '../../../proxy/src/process/worker-heap.js';

describe("workers' young generation", () => {
  it("workers are forked with the bounded young generation, after the primary's own flags", () => {
    expect(workerExecArgv(['--import', 'tsx'], undefined)).to.deep.equal([
      '--import',
      'tsx',
      `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`,
    ]);
  });

  it('a size the operator gave on the command line wins', () => {
    expect(workerExecArgv(['--max-semi-space-size=32'], '')).to.deep.equal(['--max-semi-space-size=32']);
    expect(workerExecArgv(['--max_semi_space_size=2'], undefined)).to.deep.equal(['--max_semi_space_size=2']);
  });

  it('a size the operator gave in NODE_OPTIONS wins (workers inherit it)', () => {
    expect(workerExecArgv([], '--enable-source-maps --max-semi-space-size=16')).to.deep.equal([]);
  });

  it('other semi-space flags do not count as a size', () => {
    expect(workerExecArgv(['--min-semi-space-size=1'], '--semi-space-growth-factor=2')).to.deep.equal([
      '--min-semi-space-size=1',
      `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`,
    ]);
  });
});
