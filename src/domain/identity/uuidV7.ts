import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

/**
 * UUIDv7 keys for new tasks and steps (RFC 9562: 48 bits of Unix milliseconds, then a counter and random bits),
 * made with the uuid package from random bytes drawn from a pool.
 *
 * Why a pool: uuid's v7() asks the operating system for 16 fresh bytes per key (crypto.getRandomValues), and
 * that system call costs about 4.4 µs on the 2-core reference VM, 40 % of what creating a one-step task costs
 * in Node (two keys: the task's and the step's). The pool holds the same cryptographically strong bytes,
 * fetched 256 keys at a time. tasker.uuid_generate_v7 (src/db/sql/identity.sql) makes the same trade for the keys
 * PostgreSQL makes.
 *
 * Keys stay monotonic within a process as uuid's own are: in one millisecond the counter counts up from a random
 * start (and a full counter moves on to the next millisecond), so the steps of a task sort in the order they
 * were made.
 */
const KEYS_PER_FILL = 256;
const pool = new Uint8Array(16 * KEYS_PER_FILL);
let used = KEYS_PER_FILL;
let lastMsecs = Number.NEGATIVE_INFINITY;
let counter = 0;

export function uuidv7(): string {
  if (used === KEYS_PER_FILL) {
    randomFillSync(pool);
    used = 0;
  }
  const random = pool.subarray(used * 16, used * 16 + 16);
  used += 1;
  const now = Date.now();
  if (now > lastMsecs) {
    // A new millisecond: the counter starts from 31 random bits, leaving room to count up.
    counter =
      (((random[6] ?? 0) & 0x7f) << 24) |
      ((random[7] ?? 0) << 16) |
      ((random[8] ?? 0) << 8) |
      (random[9] ?? 0);
    lastMsecs = now;
  } else {
    counter = (counter + 1) | 0;
    if (counter === 0) lastMsecs += 1;
  }
  return v7({ random, msecs: lastMsecs, seq: counter });
}
