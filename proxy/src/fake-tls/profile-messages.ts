// Site profiles as the primary sends them to its workers: the whole list again at each change.
import { field, messageKind } from '../process/ipc.js';
import type { WorkerIpc } from '../process/worker.js';
import type { SiteProfile } from './site-profile.js';

/** The whole list again at each change. */
export const TLS_PROFILES = messageKind('tls-profiles', { profiles: field.list<SiteProfile>() });

/**
 * A worker's site profiles by domain: those it started with, replaced whole by each 'tls-profiles'
 * message. With no SNI (some apps send none) or one accepted by UNKNOWN_SNI=accept, the first
 * domain's profile answers.
 */
export function profilesOverIpc(
  ipc: WorkerIpc,
  initial: readonly SiteProfile[],
  firstDomain: string | undefined,
): (sni: string | undefined) => SiteProfile | undefined {
  let byDomain = new Map(initial.map((p) => [p.domain, p]));
  ipc.on(TLS_PROFILES, (msg) => {
    byDomain = new Map(msg.profiles.map((p) => [p.domain, p]));
  });
  return (sni) =>
    (sni === undefined ? undefined : byDomain.get(sni)) ??
    (firstDomain === undefined ? undefined : byDomain.get(firstDomain));
}
