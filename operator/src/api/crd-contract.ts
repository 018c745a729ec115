// Compile-time contract between the CRD (crd.generated.ts, generated from crds/) and the
// hand-written types the code uses (types.ts): `npm run typecheck` fails, naming the differing
// paths, when a field exists in one and not the other, or when a field's type differs. Nothing
// here runs.
import type { CrdSpec, CrdStatus } from './crd.generated.js';
import type { MTProxySpec, MTProxyStatus } from './types.js';

type Primitive = string | number | boolean | bigint | symbol | null | undefined;

/** Every field path of T, e.g. "upstream.dcAddresses[].dc"; free-form maps end in ".*". */
type Paths<T, P extends string = ''> = T extends Primitive
  ? never
  : T extends readonly (infer I)[]
    ? `${P}[]` | Paths<I, `${P}[]`>
    : string extends keyof T
      ? `${P}.*`
      : {
          [K in keyof T & string]-?:
            | `${P}${P extends '' ? '' : '.'}${K}`
            | Paths<NonNullable<T[K]>, `${P}${P extends '' ? '' : '.'}${K}`>;
        }[keyof T & string];

/** Leaf types (what a path holds when it is not an object), so type changes show up too. */
type Leaves<T, P extends string = ''> = T extends Primitive
  ? `${P}:${T extends string ? (string extends T ? 'string' : T) : T extends number ? 'number' : T extends boolean ? 'boolean' : 'other'}`
  : T extends readonly (infer I)[]
    ? Leaves<I, `${P}[]`>
    : string extends keyof T
      ? `${P}.*`
      : {
          [K in keyof T & string]-?: Leaves<NonNullable<T[K]>, `${P}${P extends '' ? '' : '.'}${K}`>;
        }[keyof T & string];

/** Resolves to true when A and B name the same paths; otherwise to the paths only one has. */
type Same<A extends string, B extends string> = [Exclude<A, B> | Exclude<B, A>] extends [never]
  ? true
  : { onlyInTypes: Exclude<A, B>; onlyInCrd: Exclude<B, A> };

type Check<T extends true> = T;

export type SpecPathsMatch = Check<Same<Paths<MTProxySpec>, Paths<CrdSpec>>>;
export type SpecLeavesMatch = Check<Same<Leaves<MTProxySpec>, Leaves<CrdSpec>>>;
export type StatusPathsMatch = Check<Same<Paths<MTProxyStatus>, Paths<CrdStatus>>>;
export type StatusLeavesMatch = Check<Same<Leaves<MTProxyStatus>, Leaves<CrdStatus>>>;
