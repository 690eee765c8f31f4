import { describe, expect, it } from 'vitest';
import { NotifiedCache, type ChangeNotices } from '../../src/db/change-notices.js';

/** Change notices as the listening connection delivers them, driven by the test. */
function notices(live = true) {
  let handler: (id: string | undefined) => void = () => undefined;
  const source: ChangeNotices & { live: boolean; deliver(id: string | undefined): void } = {
    live,
    subscribe: (_table, onChange) => void (handler = onChange),
    stop: async () => undefined,
    deliver: (id) => handler(id),
  };
  return source;
}

/** A load that finishes when the test says so. */
function pending<V>() {
  let finish: (value: V) => void = () => undefined;
  const promise = new Promise<V>((resolve) => (finish = resolve));
  return { load: () => promise, finish };
}

describe('a cache kept true by change notices', () => {
  it('keeps what it read, and reads again once a notice names it', async () => {
    const source = notices();
    const cache = new NotifiedCache<string>(source, 'artefacts');
    let loads = 0;
    const load = async () => `row ${++loads}`;
    expect(await cache.get('a', load)).toBe('row 1');
    expect(await cache.get('a', load)).toBe('row 1');
    source.deliver('a');
    expect(await cache.get('a', load)).toBe('row 2');
  });

  it('does not keep a row read while a notice named it, but keeps one read while another row changed', async () => {
    const source = notices();
    const cache = new NotifiedCache<string>(source, 'artefacts');
    const named = pending<string>();
    const other = pending<string>();
    const reads = [cache.get('a', named.load), cache.get('b', other.load)];
    source.deliver('a');
    named.finish('old a');
    other.finish('b');
    expect(await Promise.all(reads)).toEqual(['old a', 'b']);
    expect(await cache.get('a', async () => 'new a')).toBe('new a');
    expect(await cache.get('b', async () => 'read again')).toBe('b');
  });

  it('keeps nothing read across a lost connection, nor while notices are not live', async () => {
    const source = notices();
    const cache = new NotifiedCache<string>(source, 'artefacts');
    await cache.get('kept', async () => 'kept');
    const inFlight = pending<string>();
    const read = cache.get('a', inFlight.load);
    source.deliver(undefined);
    inFlight.finish('a');
    expect(await read).toBe('a');
    expect(await cache.get('a', async () => 'a again')).toBe('a again');
    expect(await cache.get('kept', async () => 'kept, read again')).toBe('kept, read again');
    source.live = false;
    expect(await cache.get('b', async () => 'b')).toBe('b');
    expect(await cache.get('b', async () => 'b again')).toBe('b again');
  });

  it('keeps what this process wrote, unless a notice named it meanwhile', async () => {
    const source = notices();
    const cache = new NotifiedCache<string>(source, 'artefacts');
    await cache.write('a', async () => 'written');
    expect(await cache.get('a', async () => 'read')).toBe('written');
    const write = pending<string>();
    const writing = cache.write('b', write.load);
    source.deliver('b');
    write.finish('written b');
    await writing;
    expect(await cache.get('b', async () => 'read b')).toBe('read b');
  });

  it('sheds the entries least recently used when full, and what matches on request', async () => {
    const cache = new NotifiedCache<{ grant: string }>(notices(), 'artefacts', 2);
    await cache.get('a', async () => ({ grant: 'g1' }));
    await cache.get('b', async () => ({ grant: 'g2' }));
    await cache.get('c', async () => ({ grant: 'g1' }));
    expect(await cache.get('a', async () => ({ grant: 'a read again' }))).toEqual({ grant: 'a read again' });
    // In use, c stays while b, unused, goes.
    expect(await cache.get('c', async () => ({ grant: 'c read again' }))).toEqual({ grant: 'g1' });
    expect(await cache.get('b', async () => ({ grant: 'b read again' }))).toEqual({ grant: 'b read again' });
    cache.forgetWhere((row) => row.grant === 'g1');
    expect(await cache.get('c', async () => ({ grant: 'c read again' }))).toEqual({ grant: 'c read again' });
  });
});
