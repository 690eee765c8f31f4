import { migrate } from '../../db/migrate.js';
import type { Command } from '../command.js';

export const databaseCommands: Command[] = [
  {
    name: 'db migrate',
    usage: 'idp db migrate',
    summary: 'apply pending migrations (the server also does this at start)',
    options: {},
    migrate: false,
    async run(runtime) {
      const result = await migrate(runtime.db, runtime.logger);
      return {
        json: result,
        text: result.applied.length ? `applied: ${result.applied.join(', ')}` : `up to date (${result.alreadyApplied.length} migrations)`,
      };
    },
  },
];
