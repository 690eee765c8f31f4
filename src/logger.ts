import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { activeTraceIds } from './telemetry.js';
import type { Config } from './config.js';

export type { Logger };

/**
 * Paths that may carry credentials. Request and form bodies are never logged as a whole,
 * but these catch anything passed to the logger by mistake.
 */
const redactedPaths = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'client_secret',
  '*.client_secret',
  'token',
  '*.token',
  'access_token',
  'refresh_token',
  'id_token',
  'code',
  '*.code',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
];

/** Readable lines for a person at a terminal; JSON lines for machines (and whenever asked). */
export function wantsPrettyLogs(format: Config['logFormat'] | undefined, isTerminal: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && isTerminal);
}

export function createLogger(
  config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logFormat'>>,
  destination?: pino.DestinationStream,
): Logger {
  const options = {
    level: config.logLevel,
    // The trace a line belongs to, when tracing is on (telemetry.ts).
    mixin: activeTraceIds,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    base: { service: 'idp' },
  };
  if (!destination && wantsPrettyLogs(config.logFormat, process.stdout.isTTY === true)) {
    // In-process (no worker thread), written synchronously: a crash's last lines are not lost.
    return pino(
      options,
      pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', sync: true }),
    );
  }
  return pino(options, destination);
}
