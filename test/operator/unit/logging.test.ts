// The operator's logs never carry a secret, wherever in a logged object it hides.
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../../operator/src/logging.js';

const SECRET = '00112233445566778899aabbccddeeff';

function capture() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (c: Buffer) => lines.push(...c.toString('utf8').trim().split('\n')));
  return { log: createLogger('debug', { stream }), lines };
}

describe('operator: logs', () => {
  it('redacts secrets in nested fields, arrays and errors, not only top-level strings', async () => {
    const { log, lines } = capture();
    const cyclic: Record<string, unknown> = { note: `tag ${SECRET}` };
    cyclic.self = cyclic;
    log.warn('apply failed', {
      answer: { kind: 'Status', details: { causes: [{ message: `data.secrets: ${SECRET}` }] } },
      links: [`tg://proxy?server=a&port=443&secret=dd${SECRET}`],
      error: new Error(`PATCH failed: ${Buffer.from(SECRET.repeat(2)).toString('base64')}`),
      cyclic,
      count: 3,
    });
    await new Promise((r) => setImmediate(r));
    expect(lines).to.have.length(1);
    const text = lines[0]!;
    expect(text).to.not.include(SECRET);
    expect(text).to.not.include(Buffer.from(SECRET.repeat(2)).toString('base64'));
    const entry = JSON.parse(text) as Record<string, unknown>;
    expect(entry).to.deep.include({ count: 3, message: 'apply failed' });
    expect(JSON.stringify(entry.answer)).to.include('[redacted]');
    expect(JSON.stringify(entry.cyclic)).to.include('[circular]');
  });
});
