// The start-up banner, in the spirit of the official image's: every secret with its links, the tag
// and the external address. It is the one place a secret is printed, because the user asked for
// the links; BANNER=off turns it off.
import type { Config } from '../config/config.js';
import { type ClientSecret, formatSecretParam, proxyLinks } from '../config/links.js';

export interface BannerUser {
  readonly name: string;
  readonly secret: Buffer;
}

export interface BannerInput {
  readonly config: Config;
  /** secret1, secret2, ... from SECRET or DATA_DIR, then the users file's users. */
  readonly users: readonly BannerUser[];
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

export function formatBanner({ config, users, externalIp }: BannerInput): string {
  const host = config.publicHost ?? externalIp ?? 'YOUR_SERVER_IP';
  const port = config.publicPort;
  const lines = ['[*] Final configuration:'];
  for (const { name, secret: key } of users) {
    // Secrets of the official env contract keep the official wording; named users say their name.
    const generated = /^secret(\d+)$/.exec(name);
    const who = generated ? `secret ${generated[1]}` : `user ${name}`;
    lines.push(
      generated
        ? `[*]   Secret ${generated[1]}: ${key.toString('hex')}`
        : `[*]   User ${name}: ${key.toString('hex')}`,
    );
    for (const form of clientForms(config, key)) {
      const links = proxyLinks(host, port, formatSecretParam(form.secret));
      lines.push(`[*]   tg:// link for ${who}, ${form.label}: ${links.tg}`);
      lines.push(`[*]   t.me link for ${who}, ${form.label}: ${links.tme}`);
    }
  }
  lines.push(`[*]   Tag: ${config.tag ? config.tag.toString('hex') : 'no tag'}`);
  lines.push(`[*]   External IP: ${externalIp ?? 'unknown (set EXTERNAL_IP)'}`);
  lines.push(
    '[*]   Make sure to fix the links in case you run the proxy on a different port (set PUBLIC_PORT).',
  );
  return `${lines.join('\n')}\n`;
}
