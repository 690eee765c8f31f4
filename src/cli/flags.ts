import type { z } from 'zod';
import { InvalidInput } from '../errors.js';

/** The flag behind each input field, and what was typed for it. */
export interface FlagInput {
  values: Record<string, unknown>;
  flagOf: Record<string, string>;
}

/** An InvalidInput about a field, told in the operator's words: the flag and the value typed. */
function inFlagTerms(input: FlagInput, path: (string | number)[], message: string): InvalidInput {
  const [field, index] = path;
  const flag = typeof field === 'string' ? input.flagOf[field] : undefined;
  if (!flag) return new InvalidInput(`${path.join('.') || 'input'}: ${message}`, path);
  const given = input.values[field as string];
  const value = typeof index === 'number' && Array.isArray(given) ? given[index] : Array.isArray(given) ? undefined : given;
  return new InvalidInput(
    value === undefined || typeof value === 'boolean' ? `${flag}: ${message}` : `${flag} ${JSON.stringify(value)}: ${message}`,
    path,
  );
}

/**
 * Validates a command's flags with the domain's own schema at the edge, and says what is
 * wrong as `--redirect-uri "not-a-uri": must be an absolute URL`, not by schema path.
 */
export function parseFlags<T extends z.ZodType>(schema: T, input: FlagInput): z.output<T> {
  const parsed = schema.safeParse(input.values);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw inFlagTerms(
    input,
    issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part)),
    issue.message,
  );
}

/** Runs `work`; an InvalidInput it throws about a known field is retold in flag terms. */
export async function withFlagErrors<T>(input: FlagInput, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof InvalidInput && error.field?.length) {
      const message = error.message.replace(/^[^:]*: /, '');
      throw inFlagTerms(input, error.field, message);
    }
    throw error;
  }
}
