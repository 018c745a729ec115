import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { replaceTable } from '../../proxy/src/config/settings-table.js';

describe('README', () => {
  it('documents every proxy setting exactly as the settings table says (run `npm run docs` to refresh)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(replaceTable(readme)).to.equal(readme);
  });
});
