// `npm run docs`: regenerate the generated parts of README.md, and the MTProxy types generated from
// the CRD (operator/src/api/crd.generated.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { renderCrdTypes } from '../operator/src/api/crd-types.js';
import { replaceTable } from '../proxy/src/config/settings-table.js';

const path = new URL('../README.md', import.meta.url);
writeFileSync(path, replaceTable(readFileSync(path, 'utf8')));

const crd = readFileSync(new URL('../crds/mtkube.dev_mtproxies.yaml', import.meta.url), 'utf8');
writeFileSync(new URL('../operator/src/api/crd.generated.ts', import.meta.url), renderCrdTypes(crd));
