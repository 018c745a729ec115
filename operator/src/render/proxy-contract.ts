// The last word on whether the proxy can start with a spec belongs to the proxy: the environment
// the operator would render is run through the proxy's own configuration parser before anything is
// rolled out. The CRD's schema and rules already refuse what the parser refuses (a property test
// holds them to it); this catches what slips between them as a visible InvalidSpec on the MTProxy
// instead of a crash-looping pod.

import { parseConfig, readRawSettings } from '../../../proxy/src/config/config.js';
import { ConfigError } from '../../../proxy/src/config/errors.js';
import type { ProxySettings } from '../api/defaults.js';
import { renderEnv } from './env.js';

/** Stand-ins for what the kubelet fills in: a Secret key's value, a downward-API address. */
const PLACEHOLDER_SECRET = '00000000000000000000000000000000';
const PLACEHOLDER_IP = '10.0.0.1';

/** The proxy's complaint about the env this spec renders to, or undefined when it would start. */
export function proxyConfigProblem(settings: ProxySettings): string | undefined {
  const vars = renderEnv(settings, {
    secretsRef: { name: 'placeholder', key: 'secrets' },
    usersSecretName: undefined,
    loadBalancerIP: undefined,
  });
  const env: Record<string, string> = {};
  for (const v of vars) {
    if (v.value !== undefined) env[v.name] = v.value;
    else if (v.valueFrom && 'secretKeyRef' in v.valueFrom) env[v.name] = PLACEHOLDER_SECRET;
    else env[v.name] = PLACEHOLDER_IP;
  }
  try {
    parseConfig(readRawSettings(env, []), env);
    return undefined;
  } catch (err) {
    if (err instanceof ConfigError) return `the proxy would not start: ${err.message}`;
    throw err;
  }
}
