// Reads the known-answer vectors copied into test/fixtures/vectors (see SOURCE.md there).
import { readFileSync } from 'node:fs';

const dir = new URL('../fixtures/vectors/', import.meta.url);

export function loadVectors<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;
}

export function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}
