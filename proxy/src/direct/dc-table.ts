// Where Telegram's data centres are, for direct mode (docs/protocol.md §5.1).
// Sources: the DC tables of mtprotoproxy, mtg and telemt, which cite the clients' built-in DC
// options; test DCs from tdlib's built-in test options. All on port 443.

/** One address of a data centre (or of a DC_ADDRS override). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const PRODUCTION_V4: Readonly<Record<number, string>> = {
  1: '149.154.175.50',
  2: '149.154.167.51',
  3: '149.154.175.100',
  4: '149.154.167.91',
  5: '149.154.171.5',
  203: '91.105.192.100',
};

const PRODUCTION_V6: Readonly<Record<number, string>> = {
  1: '2001:b28:f23d:f001::a',
  2: '2001:67c:4e8:f002::a',
  3: '2001:b28:f23d:f003::a',
  4: '2001:67c:4e8:f004::a',
  5: '2001:b28:f23f:f005::a',
  203: '2a0a:f280:203:a:5000::100',
};

/** Test DCs: clients add 10000 to the DC number (§2.4). */
const TEST_V4: Readonly<Record<number, string>> = {
  1: '149.154.175.10',
  2: '149.154.167.40',
  3: '149.154.175.117',
};

const TEST_V6: Readonly<Record<number, string>> = {
  1: '2001:b28:f23d:f001::e',
  2: '2001:67c:4e8:f002::e',
  3: '2001:b28:f23d:f003::e',
};

const TEST_DC_OFFSET = 10000;
const DC_PORT = 443;

export interface DcTableOptions {
  readonly overrides: ReadonlyMap<number, readonly HostPort[]>;
  readonly preferIpv6: boolean;
}

/**
 * The addresses to try, in order, for the signed DC index a client asked for, or undefined when
 * we know no such DC (the client is then refused). Media DCs (negative ids) share the address of
 * their DC in direct mode. An override for the exact id wins, then one for its absolute value.
 */
export function resolveDc(dc: number, opts: DcTableOptions): readonly HostPort[] | undefined {
  const override = opts.overrides.get(dc) ?? opts.overrides.get(Math.abs(dc));
  if (override) return override;
  const id = Math.abs(dc);
  const test = id > TEST_DC_OFFSET;
  const n = test ? id - TEST_DC_OFFSET : id;
  const v4 = (test ? TEST_V4 : PRODUCTION_V4)[n];
  const v6 = (test ? TEST_V6 : PRODUCTION_V6)[n];
  const list = [v4, v6].filter((a): a is string => a !== undefined).map((host) => ({ host, port: DC_PORT }));
  if (list.length === 0) return undefined;
  return opts.preferIpv6 ? list.reverse() : list;
}
