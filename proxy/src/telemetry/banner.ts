// The start-up banner, in the spirit of the official image's: every secret with its links, the tag
// and the external address. It is the one place a secret is printed, because the user asked for
// the links; BANNER=off turns it off.
import type { Config } from '../config/config.js';
import { type ClientSecret, formatSecretParam, proxyLinks } from '../config/links.js';

export interface BannerInput {
  readonly config: Config;
  readonly secrets: readonly Buffer[];
  readonly externalIp: string | undefined;
}

/** The secret forms the proxy accepts, most preferred first. */
function clientForms(key: Buffer): { label: string; secret: ClientSecret }[] {
  return [
    { label: 'dd (padded, preferred by current apps)', secret: { kind: 'dd', key } },
    { label: 'plain', secret: { kind: 'plain', key } },
  ];
}

export function formatBanner({ config, secrets, externalIp }: BannerInput): string {
  const host = config.publicHost ?? externalIp ?? 'YOUR_SERVER_IP';
  const port = config.publicPort;
  const lines = ['[*] Final configuration:'];
  secrets.forEach((key, i) => {
    const n = i + 1;
    lines.push(`[*]   Secret ${n}: ${key.toString('hex')}`);
    for (const form of clientForms(key)) {
      const links = proxyLinks(host, port, formatSecretParam(form.secret));
      lines.push(`[*]   tg:// link for secret ${n}, ${form.label}: ${links.tg}`);
      lines.push(`[*]   t.me link for secret ${n}, ${form.label}: ${links.tme}`);
    }
  });
  lines.push(`[*]   Tag: ${config.tag ? config.tag.toString('hex') : 'no tag'}`);
  lines.push(`[*]   External IP: ${externalIp ?? 'unknown (set EXTERNAL_IP)'}`);
  lines.push(
    '[*]   Make sure to fix the links in case you run the proxy on a different port (set PUBLIC_PORT).',
  );
  return `${lines.join('\n')}\n`;
}
