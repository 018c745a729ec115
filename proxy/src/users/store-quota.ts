// Quota usage summed over every proxy using the store, kept there so that restarts, rolls and
// rescheduling do not reset it. Relayed bytes are never a round trip: each pod adds what it
// counted to one key per user and period (INCRBY) every FLUSH_MS, and reads the sum back in the
// same pipelined command. While the store is down the counts wait here (one number per user, so
// nothing grows without bound) and are added when it returns.

import type { StateStore } from '../state/state-store.js';
import { periodTtlSeconds } from './quota-period.js';
import type { QuotaPeriod } from './users-file.js';

export const FLUSH_MS = 2_000;

export interface QuotaUser {
  readonly name: string;
  readonly period: QuotaPeriod;
  /** The period's name now (quota-period.ts). */
  readonly periodKey: string;
}

export class StoreQuota {
  readonly #store: StateStore;
  /** user -> bytes counted here and not yet in the store, by period name */
  readonly #pending = new Map<string, Map<string, number>>();

  constructor(store: StateStore) {
    this.#store = store;
  }

  add(user: string, periodKey: string, bytes: number): void {
    let byPeriod = this.#pending.get(user);
    if (byPeriod === undefined) {
      byPeriod = new Map();
      this.#pending.set(user, byPeriod);
    }
    byPeriod.set(periodKey, (byPeriod.get(periodKey) ?? 0) + bytes);
  }

  /** Bytes of `user` in `periodKey` counted here and not yet in the store. */
  pending(user: string, periodKey: string): number {
    return this.#pending.get(user)?.get(periodKey) ?? 0;
  }

  /**
   * Adds what is pending for these users and reads their sums over every pod; users the store
   * did not answer for are missing from the result (their counts stay pending).
   */
  async sync(users: readonly QuotaUser[]): Promise<Map<string, number>> {
    const totals = new Map<string, number>();
    await Promise.all(
      users.map(async (u) => {
        const byPeriod = this.#pending.get(u.name);
        // Counts of a period that has ended still go to its key (they were used in it).
        for (const [period, bytes] of byPeriod ?? []) {
          if (period === u.periodKey) continue;
          if (await this.#incr(u, period, bytes)) byPeriod!.delete(period);
        }
        const bytes = byPeriod?.get(u.periodKey) ?? 0;
        byPeriod?.delete(u.periodKey);
        const total = await this.#incr(u, u.periodKey, bytes);
        if (total === undefined) {
          if (bytes > 0) this.add(u.name, u.periodKey, bytes);
          return;
        }
        if (byPeriod?.size === 0) this.#pending.delete(u.name);
        totals.set(u.name, total);
      }),
    );
    return totals;
  }

  async #incr(u: QuotaUser, period: string, bytes: number): Promise<number | undefined> {
    const key = this.#store.key('q', u.name, period);
    const ttl = periodTtlSeconds(u.period);
    try {
      const reply = await this.#store.command(['INCRBY', key, bytes]);
      if (ttl !== undefined && bytes > 0)
        void this.#store.command(['EXPIRE', key, ttl, 'NX']).catch(() => {});
      return Number(reply);
    } catch {
      this.#store.fellBack('quota');
      return undefined;
    }
  }
}
