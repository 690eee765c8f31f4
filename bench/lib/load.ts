import { performance } from 'node:perf_hooks';

export interface LoadResult {
  ops: number;
  errors: number;
  firstError: string | undefined;
  seconds: number;
  /** Milliseconds, one per successful operation. */
  latencies: number[];
}

/**
 * `concurrency` workers each run `operation` back to back until `seconds` have passed
 * (bounded in time; each worker has at most one operation in flight).
 */
export async function runLoad(concurrency: number, seconds: number, operation: (worker: number) => Promise<void>): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await operation(worker);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors += 1;
          firstError ??= error instanceof Error ? error.message : String(error);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }),
  );
  return { ops: latencies.length, errors, firstError, seconds: (performance.now() - started) / 1000, latencies };
}

export function percentile(sortedAscending: number[], p: number): number {
  if (sortedAscending.length === 0) return Number.NaN;
  const index = Math.min(sortedAscending.length - 1, Math.max(0, Math.ceil((p / 100) * sortedAscending.length) - 1));
  return sortedAscending[index]!;
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}
