// What the operator chose for client handshakes, in the session's own terms. config/ validates the
// environment into these types; the session reads them and never reads the environment itself.
import type { ClockWindow } from '../fake-tls/client-hello.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import type { Transport } from '../protocol/obfuscated2.js';
import type { Framing } from './events.js';

/**
 * What a client may speak: `classic` = abridged or intermediate obfuscated2, `secure` = padded
 * intermediate (`dd`), `tls` = fake TLS (`ee`). Inside fake TLS, padded is always accepted and
 * abridged/intermediate only when `classic` is on too.
 */
export type ClientMode = 'classic' | 'secure' | 'tls';
/** A fake-TLS hello naming a domain we do not serve: masked, closed unanswered, or accepted. */
export type UnknownSniAction = 'mask' | 'drop' | 'accept';
/** Whether connections start with a load balancer's PROXY protocol header, and which version. */
export type ProxyProtocolSetting = 'off' | 'v1' | 'v2' | 'auto';

export interface FakeTlsPolicy {
  /** Domains an SNI may name, lower-case. */
  readonly domains: readonly string[];
  readonly unknownSni: UnknownSniAction;
  readonly window: ClockWindow;
  /** Our clock in Unix seconds: the hello's timestamp is checked against it. */
  readonly now: () => number;
  /**
   * The measured shape of the site an SNI names (fake-tls/site-profile.ts); undefined, or
   * returning undefined, gives the fallback answer.
   */
  readonly profile?: (sni: string | undefined) => SiteProfile | undefined;
  /** 'dynamic' (default): records after the handshake sized like a web server's; 'off': up to 16 KB. */
  readonly recordSizes?: 'dynamic' | 'off';
  /** 'site': records leave in bursts spaced like the site's measured answer; 'off' (default). */
  readonly recordTiming?: 'site' | 'off';
}

/** Whether MODES lets a client use `transport` with `framing`. */
export function transportAllowed(
  transport: Transport,
  framing: Framing,
  modes: ReadonlySet<ClientMode>,
): boolean {
  // tdlib sends padded intermediate inside fake TLS; the unpadded transports give themselves away
  // by their packet sizes, so inside TLS they need `classic` too (as in mtprotoproxy).
  if (framing === 'tls') return transport === 'padded' || modes.has('classic');
  return transport === 'padded' ? modes.has('secure') : modes.has('classic');
}
