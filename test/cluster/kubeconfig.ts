// Kubeconfig files for the test control plane. kubectl, helm and client
// libraries read YAML, and JSON is YAML, so JSON.stringify is all we need.
import { writeFile } from 'node:fs/promises';

export type KubeUser =
  | { readonly clientCertificatePem: string; readonly clientKeyPem: string }
  | { readonly token: string };

export interface KubeconfigInput {
  readonly server: string;
  readonly caPem: string;
  readonly user: KubeUser;
  readonly userName: string;
  /** Namespace kubectl uses when none is given. */
  readonly namespace?: string;
}

function b64(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const user =
    'token' in input.user
      ? { token: input.user.token }
      : {
          'client-certificate-data': b64(input.user.clientCertificatePem),
          'client-key-data': b64(input.user.clientKeyPem),
        };
  const context: Record<string, string> = { cluster: 'mtkube-test', user: input.userName };
  if (input.namespace) context.namespace = input.namespace;
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'mtkube-test',
          cluster: { server: input.server, 'certificate-authority-data': b64(input.caPem) },
        },
      ],
      users: [{ name: input.userName, user }],
      contexts: [{ name: 'mtkube-test', context }],
      'current-context': 'mtkube-test',
    },
    null,
    2,
  )}\n`;
}

export async function writeKubeconfig(path: string, input: KubeconfigInput): Promise<string> {
  // Mode 0600: it holds a private key or a bearer token, and kubectl/helm
  // warn about group- or world-readable kubeconfigs.
  await writeFile(path, renderKubeconfig(input), { mode: 0o600 });
  return path;
}
