// `npm run docs`: regenerate the generated parts of README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { replaceTable } from '../proxy/src/config/settings-table.js';

const path = new URL('../README.md', import.meta.url);
writeFileSync(path, replaceTable(readFileSync(path, 'utf8')));
