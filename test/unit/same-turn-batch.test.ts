import { describe, expect, it } from 'vitest';
import { sameTurnWriteBatch } from '../../src/db/same-turn-batch.js';

interface Write {
  key: string;
  value: string;
}

/** A store whose multi-row write refuses a whole batch when one row is bad (as one SQL statement does). */
function store() {
  const rows = new Map<string, string>();
  const statements: string[][] = [];
  const check = (write: Write) => {
    if (write.value === 'bad') throw new Error(`bad row ${write.key}`);
  };
  const write = sameTurnWriteBatch<Write>({
    one: async (write) => {
      statements.push([write.key]);
      check(write);
      rows.set(write.key, write.value);
    },
    many: async (writes) => {
      statements.push(writes.map((write) => write.key));
      writes.forEach(check);
      for (const write of writes) rows.set(write.key, write.value);
    },
    idOf: (write) => write.key,
  });
  return { rows, statements, write };
}

describe('writes of one event-loop turn', () => {
  it('go as one statement, every caller waiting for it', async () => {
    const { rows, statements, write } = store();
    await Promise.all(['a', 'b', 'c'].map((key) => write({ key, value: key.toUpperCase() })));
    expect(statements).toEqual([['a', 'b', 'c']]);
    expect([...rows]).toEqual([
      ['a', 'A'],
      ['b', 'B'],
      ['c', 'C'],
    ]);
  });

  it('a lone write is a single-row statement; writes of later turns are statements of their own', async () => {
    const { statements, write } = store();
    await write({ key: 'a', value: '1' });
    await Promise.all([write({ key: 'b', value: '2' }), write({ key: 'c', value: '3' })]);
    expect(statements).toEqual([['a'], ['b', 'c']]);
  });

  it('when one row fails the statement, the others are written alone and only its caller hears the error', async () => {
    const { rows, statements, write } = store();
    const outcomes = await Promise.allSettled([
      write({ key: 'a', value: '1' }),
      write({ key: 'b', value: 'bad' }),
      write({ key: 'c', value: '3' }),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('bad row b'));
    expect(statements).toEqual([['a', 'b', 'c'], ['a'], ['b'], ['c']]);
    expect([...rows]).toEqual([
      ['a', '1'],
      ['c', '3'],
    ]);
  });

  it('two writes of one key in a turn run one after the other, in the order asked, the last one kept', async () => {
    const { rows, statements, write } = store();
    await Promise.all([write({ key: 'a', value: 'first' }), write({ key: 'b', value: 'x' }), write({ key: 'a', value: 'second' })]);
    expect(statements).toEqual([['a'], ['b'], ['a']]);
    expect(rows.get('a')).toBe('second');
  });
});
