import { startControlPlane } from './test/cluster/control-plane.js';
const t = Date.now();
const c = await startControlPlane({ realNode: true, startTimeoutMs: 900_000, keepTempDir: true, log: (m) => console.error(`[${((Date.now() - t) / 1000).toFixed(1)}] ${m}`) });
console.error('READY', c.kubeconfigPath, c.binDir);
const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'ghcr.io/mtkube/mtproxy:0.1.0', imagePullPolicy: 'Never', env: [{ name: 'PORT', value: '8443' }, { name: 'IP_DETECT_URLS', value: '' }, { name: 'EXTERNAL_IP', value: '127.0.0.1' }, { name: 'MODE', value: 'direct' }], readinessProbe: { httpGet: { path: '/readyz', port: 9102 } } }] } };
console.error(await c.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(pod) }));
for (let i = 0; i < 90; i++) {
  const r = await c.kubectl(['get', 'pods', '-A', '-o', 'wide']);
  console.error(r.stdout);
  if (r.stdout.includes('1/1')) break;
  await new Promise((res) => setTimeout(res, 2000));
}
console.error((await c.kubectl(['logs', 'p1'])).stdout.slice(0, 800));
console.error((await c.kubectl(['exec', 'p1', '--', 'id'])).stdout);
await c.stop({ keepTempDir: true });
console.error('STOPPED', c.tempDir);
