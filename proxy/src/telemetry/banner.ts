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

/** The secret forms the proxy accepts (MODES), most preferred first. */
function clientForms(config: Config, key: Buffer): { label: string; secret: ClientSecret }[] {
  const forms: { label: string; secret: ClientSecret }[] = [];
  const domain = config.fakeTlsDomains[0];
  if (config.modes.has('tls') && domain !== undefined) {
    forms.push({ label: `ee (fake TLS as ${domain})`, secret: { kind: 'ee', key, domain } });
  }
  if (config.modes.has('secure')) {
    forms.push({ label: 'dd (padded, preferred by current apps)', secret: { kind: 'dd', key } });
  }
  if (config.modes.has('classic')) forms.push({ label: 'plain', secret: { kind: 'plain', key } });
  return forms;
}

export function formatBanner({ config, secrets, externalIp }: BannerInput): string {
  const host = config.publicHost ?? externalIp ?? 'YOUR_SERVER_IP';
  const port = config.publicPort;
  const lines = ['[*] Final configuration:'];
  secrets.forEach((key, i) => {
    const n = i + 1;
    lines.push(`[*]   Secret ${n}: ${key.toString('hex')}`);
    for (const form of clientForms(config, key)) {
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
