#!/usr/bin/env node
// First import: it must run before anything loads oidc-provider.
import './quiet-runtime-warning.js';
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { accountCommands } from './commands/accounts.js';
import { accountFileCommands } from './commands/account-files.js';
import { auditCommands } from './commands/audit.js';
import { sessionCommands } from './commands/sessions.js';
import { clientCommands } from './commands/clients.js';
import { databaseCommands } from './commands/db.js';
import { eventCommands } from './commands/events.js';
import { mailCommands } from './commands/mail.js';
import { keyCommands } from './commands/keys.js';
import { exitCodeForError, oneLine, UsageError } from './output.js';
import { openCliRuntime, type CliRuntime } from './runtime.js';

const commands: Command[] = [
  ...clientCommands,
  ...accountCommands,
  ...accountFileCommands,
  ...databaseCommands,
  ...keyCommands,
  ...auditCommands,
  ...sessionCommands,
  ...eventCommands,
  ...mailCommands,
];

function helpText(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: idp <command> [options] [--json]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Every command accepts --json. Settings come from the environment (DATABASE_URL, ...), as for the server.',
  ].join('\n');
}

/** `idp clients` or `idp clients --help`: the group's commands. */
class GroupHelp extends Error {
  constructor(readonly commands: Command[]) {
    super('group help');
  }
}

function findCommand(argv: string[]): { command: Command; rest: string[] } {
  const [group, action, detail] = argv;
  // `accounts mfa reset`: a command named by three words, before one named by two.
  const nested = commands.find((c) => c.name === `${group} ${action} ${detail}`);
  if (nested) return { command: nested, rest: argv.slice(3) };
  const rest = argv.slice(2);
  const command = commands.find((c) => c.name === `${group} ${action}`);
  const single = commands.find((c) => c.name === group);
  if (!command && single) return { command: single, rest: argv.slice(1) };
  if (!command && group && (action === undefined || action.startsWith('-'))) {
    const inGroup = commands.filter((c) => c.name.startsWith(`${group} `));
    if (inGroup.length) throw new GroupHelp(inGroup);
  }
  if (!command) {
    const known = group ? commands.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.split(' ')[1]) : [];
    throw new UsageError(
      known.length
        ? `unknown command '${group} ${action ?? ''}'; try one of: ${known.join(', ')}`
        : `unknown command '${argv.join(' ')}'; run 'idp --help'`,
    );
  }
  return { command, rest };
}

function parse(command: Command, rest: string[]) {
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, json: { type: 'boolean' }, help: { type: 'boolean' } },
      strict: true,
      allowPositionals: true,
      allowNegative: true,
    });
    const expected = command.positionals ?? [];
    if (!values.help && positionals.length !== expected.length) {
      throw new UsageError(
        `expected ${expected.length ? expected.map((p) => `<${p}>`).join(' ') : 'no arguments'}; usage: ${command.usage}`,
      );
    }
    return { values, positionals };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // parseArgs errors: unknown option, missing value. Keep its first sentence. Generated ids
    // (session uids, …) can begin with '-': such a value is read as an option unless after '--'.
    const dashedValue =
      (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && command.positionals?.length
        ? ` (a <${command.positionals[0]}> that begins with '-' goes after '--')`
        : '';
    throw new UsageError(`${oneLine(error).split('. ')[0]}${dashedValue}; usage: ${command.usage}`);
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help' || argv[0] === '-h') {
    process.stdout.write(`${helpText()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const wantsJson = argv.includes('--json');
  let runtime: CliRuntime | undefined;
  try {
    const { command, rest } = findCommand(argv);
    const { values, positionals } = parse(command, rest);
    if (values.help) {
      process.stdout.write(`usage: ${command.usage}\n${command.summary}\n`);
      return 0;
    }
    runtime = await openCliRuntime({ migrate: command.migrate !== false });
    const result = await command.run(runtime, values, positionals);
    if (!result.streamed) process.stdout.write(wantsJson ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
    return 0;
  } catch (error) {
    if (error instanceof GroupHelp) {
      if (!argv.includes('--help')) {
        process.stderr.write(`idp: choose a command: ${error.commands.map((c) => c.name).join(', ')}\n`);
        return 2;
      }
      process.stdout.write(`${error.commands.map((c) => `usage: ${c.usage}\n  ${c.summary}`).join('\n')}\n`);
      return 0;
    }
    const code = exitCodeForError(error);
    const message = oneLine(error);
    process.stderr.write(wantsJson ? `${JSON.stringify({ error: message, exitCode: code })}\n` : `idp: ${message}\n`);
    return code;
  } finally {
    await runtime?.db.close().catch(() => undefined);
  }
}

process.exitCode = await main(process.argv.slice(2));
