// Peer proxies the benchmark measures beside ours: each one is a name, the kind of run it takes
// part in (direct to the echo DC, middle mode through the echo middle proxy, or fake TLS) and a
// shell command that starts it. The command is the user's: we never build or fetch a peer.
//
//   --peer 'NAME:KIND=COMMAND'         (repeatable), or
//   BENCH_PEERS='NAME:KIND=COMMAND'    one per line, or
//   BENCH_PEER_PROXY='COMMAND'         the older form: one direct peer named "peer"
//
// KIND is `direct`, `middle` or `tls`. What the command gets (environment variables, and the same
// names in braces in the command itself) is listed in PEER_VARIABLES.

export type PeerKind = 'direct' | 'middle' | 'tls';

export interface PeerSpec {
  readonly name: string;
  readonly kind: PeerKind;
  readonly command: string;
}

export class PeerSpecError extends Error {
  readonly code = 'BENCH_PEER_SPEC';
}

const KINDS: readonly PeerKind[] = ['direct', 'middle', 'tls'];

/**
 * What a peer command is given, by kind. Every kind also gets STATS_PORT (another free port),
 * NODE (the Node binary running the benchmark) and BENCH_BUILD (where our proxy was compiled to,
 * so that a build of ours can itself be run as a peer).
 */
export const PEER_VARIABLES: Record<PeerKind, readonly string[]> = {
  direct: ['PORT', 'SECRET', 'DC_HOST', 'DC_PORT', 'DC_ADDR'],
  middle: [
    'PORT',
    'SECRET',
    'TAG',
    'MIDDLE_HOST',
    'MIDDLE_PORT',
    'MIDDLE_ADDR',
    'PROXY_SECRET_FILE',
    'PROXY_CONFIG_FILE',
    'DC_ADDR',
  ],
  tls: ['PORT', 'SECRET', 'DOMAIN', 'DOMAIN_HEX', 'TLS_SECRET', 'DC_HOST', 'DC_PORT', 'DC_ADDR'],
};

/** `NAME:KIND=COMMAND`; names are short words so that scenario ids stay readable. */
export function parsePeerSpec(text: string): PeerSpec {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):([a-z]+)=(.+)$/s.exec(text.trim());
  if (!m) {
    throw new PeerSpecError(
      `peer "${text.slice(0, 60)}" is not NAME:KIND=COMMAND (e.g. mtg:tls=/opt/mtg simple-run 127.0.0.1:{PORT} {TLS_SECRET})`,
    );
  }
  const [, name, kind, command] = m as unknown as [string, string, string, string];
  if (!KINDS.includes(kind as PeerKind)) {
    throw new PeerSpecError(`peer ${name}: kind "${kind}" is not one of ${KINDS.join(', ')}`);
  }
  if (['mtkube', 'plain-relay', 'no-relay'].includes(name)) {
    throw new PeerSpecError(`peer name "${name}" is taken by the benchmark itself; choose another`);
  }
  return { name, kind: kind as PeerKind, command: command.trim() };
}

/** Every peer asked for, from the arguments and the environment; one name per kind at most. */
export function collectPeers(args: readonly string[], env: NodeJS.ProcessEnv): PeerSpec[] {
  const texts = [...args, ...(env.BENCH_PEERS ?? '').split('\n').filter((l) => l.trim() !== '')];
  const peers = texts.map(parsePeerSpec);
  const legacy = env.BENCH_PEER_PROXY?.trim();
  if (legacy) peers.push({ name: 'peer', kind: 'direct', command: legacy });
  const seen = new Set<string>();
  for (const p of peers) {
    const key = `${p.name}:${p.kind}`;
    if (seen.has(key)) throw new PeerSpecError(`peer ${key} is given twice`);
    seen.add(key);
  }
  return peers;
}

/** Replaces {NAME} in the command with the variable's value; unknown names are left alone. */
export function expandCommand(command: string, vars: Readonly<Record<string, string>>): string {
  return command.replace(/\{([A-Z_]+)\}/g, (whole, k: string) => vars[k] ?? whole);
}
