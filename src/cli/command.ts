import type { ParseArgsConfig } from 'node:util';
import type { CliRuntime } from './runtime.js';
import type { CommandResult } from './output.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type ParsedValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  /** e.g. "clients add" */
  name: string;
  usage: string;
  summary: string;
  options: OptionSpec;
  /** Positional arguments the command takes, by name. */
  positionals?: string[];
  /** Whether the command needs migrated tables (all but `db migrate`, which migrates itself). */
  migrate?: boolean;
  run(runtime: CliRuntime, values: ParsedValues, positionals: string[]): Promise<CommandResult>;
}
