import { describe, expect, it } from 'vitest';
import { awaitBeforeAnswer, awaitingIssuedWrites } from '../../src/oidc/issued-writes.js';

/*
 * Performance issue: a token request's writes are awaited at its end, and its answer waits
 * for every one of them; one that failed fails the request.
 */

function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('writes awaited before the answer', () => {
  it('ends the request only once every write handed over has committed', async () => {
    const first = deferred();
    const second = deferred();
    const events: string[] = [];
    const request = awaitingIssuedWrites(async () => {
      expect(awaitBeforeAnswer(first.promise)).toBe(true);
      expect(awaitBeforeAnswer(second.promise)).toBe(true);
      events.push('work done');
      return 'answer';
    }).then((answer) => events.push(`answered: ${answer}`));
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['work done']);
    first.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['work done']);
    second.resolve();
    await request;
    expect(events).toEqual(['work done', 'answered: answer']);
  });

  it('fails the request when a write failed, after the others settled, without an unhandled rejection', async () => {
    const failing = deferred();
    const slow = deferred();
    let settled = false;
    const request = awaitingIssuedWrites(async () => {
      awaitBeforeAnswer(failing.promise);
      awaitBeforeAnswer(slow.promise.then(() => void (settled = true)));
      return 'tokens';
    });
    failing.reject(new Error('the database is not reachable'));
    await new Promise((resolve) => setImmediate(resolve));
    slow.resolve();
    await expect(request).rejects.toThrow('the database is not reachable');
    expect(settled).toBe(true);
  });

  it('lets the request fail with its own error once its writes settled', async () => {
    const write = deferred();
    const request = awaitingIssuedWrites(async () => {
      awaitBeforeAnswer(write.promise);
      throw new Error('invalid_grant');
    });
    write.resolve();
    await expect(request).rejects.toThrow('invalid_grant');
  });

  it('is not taken outside a request: the caller awaits its own write', () => {
    expect(awaitBeforeAnswer(Promise.resolve())).toBe(false);
  });
});
