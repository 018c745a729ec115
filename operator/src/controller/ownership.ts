// What the operator may touch. A child is ours when it carries our label naming the MTProxy AND a
// controlling owner reference with the MTProxy's UID: a name alone proves nothing (anyone can
// create a Service called `web` before an MTProxy `web` exists). Anything else with the name we
// want is left alone and reported as a conflict naming it; deletions carry the UID we checked, so
// an object replaced in between is never the one deleted.
import type { MTProxy } from '../api/types.js';
import { LABELS } from '../render/meta.js';
import { isConflict, isNotFound, type KubeClient, type KubeObject, type ResourceRef } from './kube-client.js';

export type Claim =
  | { readonly kind: 'absent' }
  | { readonly kind: 'ours'; readonly uid: string | undefined }
  | { readonly kind: 'foreign'; readonly why: string };

/** Whether `existing` (at the name a child of `owner` wants) belongs to that MTProxy. */
export function claimOf(existing: KubeObject | undefined, owner: MTProxy): Claim {
  if (!existing) return { kind: 'absent' };
  const meta = existing.metadata ?? {};
  const labelled = meta.labels?.[LABELS.mtproxy] === owner.metadata.name;
  const controller = (meta.ownerReferences ?? []).find((o) => o.controller);
  const ownedByUs = controller !== undefined && controller.uid === owner.metadata.uid;
  if (labelled && ownedByUs) return { kind: 'ours', uid: meta.uid };
  if (controller && !ownedByUs) {
    return { kind: 'foreign', why: `it is controlled by ${controller.kind} ${controller.name}` };
  }
  if (!controller) return { kind: 'foreign', why: 'it was not created by this MTProxy (no owner reference)' };
  return { kind: 'foreign', why: `it lacks the label ${LABELS.mtproxy}=${owner.metadata.name}` };
}

/** An object with the name the operator wants exists and is not this MTProxy's. */
export class OwnershipConflict extends Error {
  readonly code = 'ERR_OWNERSHIP_CONFLICT';
  readonly object: string;
  constructor(kind: string, name: string, why: string) {
    super(
      `${kind} ${name} already exists and ${why}; the operator leaves it alone: rename the MTProxy or remove that ${kind}`,
    );
    this.name = 'OwnershipConflict';
    this.object = `${kind} ${name}`;
  }
}

function refOf(obj: KubeObject): ResourceRef {
  return {
    apiVersion: obj.apiVersion ?? '',
    kind: obj.kind ?? '',
    namespace: obj.metadata?.namespace,
    name: obj.metadata?.name,
  };
}

/**
 * Writes for one MTProxy's children: apply only over nothing or over our own object (with its UID
 * as a precondition), delete only our own object (with its UID as a precondition).
 */
export class OwnedWriter {
  constructor(
    private readonly client: KubeClient,
    private readonly owner: MTProxy,
  ) {}

  /** Server-side apply of a child; throws OwnershipConflict when the name is taken by another object. */
  async apply<T extends KubeObject>(desired: KubeObject): Promise<T> {
    const ref = refOf(desired);
    const claim = claimOf(await this.client.find(ref), this.owner);
    if (claim.kind === 'foreign') throw new OwnershipConflict(ref.kind, ref.name ?? '', claim.why);
    // With the UID in the body the API server refuses the patch if the object was replaced since.
    const body =
      claim.kind === 'ours' && claim.uid
        ? { ...desired, metadata: { ...desired.metadata, uid: claim.uid } }
        : desired;
    try {
      return await this.client.apply<T>(body);
    } catch (err) {
      if (isConflict(err) && claim.kind === 'ours') {
        throw new OwnershipConflict(ref.kind, ref.name ?? '', 'was replaced while the operator wrote it');
      }
      throw err;
    }
  }

  /** Deletes the child if it is ours; someone else's object of that name is left in place. */
  async deleteIfOwned(ref: ResourceRef): Promise<'deleted' | 'absent' | 'not-ours'> {
    const existing = await this.client.find(ref);
    const claim = claimOf(existing, this.owner);
    if (claim.kind === 'absent') return 'absent';
    if (claim.kind === 'foreign' || !claim.uid) return 'not-ours';
    try {
      const deleted = await this.client.delete(ref, 'Background', { uid: claim.uid });
      return deleted ? 'deleted' : 'absent';
    } catch (err) {
      // 409: the UID precondition failed, the object at that name is a new one.
      if (isConflict(err)) return 'not-ours';
      if (isNotFound(err)) return 'absent';
      throw err;
    }
  }
}
