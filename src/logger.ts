import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Standard output as libuv writes it: never blocking, nothing left to flush when the process
 * exits. pino's default file-descriptor destination flushes synchronously in an `exit` listener,
 * and on a full or abandoned pipe that write never returns, so the process hangs in exit.
 */
function stdout(): NodeJS.WritableStream {
  // A reader that went away (EPIPE) costs the log lines, never the process.
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => undefined);
  return process.stdout;
}

/** JSON lines on stdout. Credentials are redacted wherever they might be logged by mistake. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        // One-time codes by their field names in bodies and queries; an error's `code` (ECONNREFUSED) stays readable.
        paths: [
          '*.authorization',
          '*.Authorization',
          '*.password',
          '*.access_token',
          '*.refresh_token',
          '*.token',
          '*.js_code',
          'body.code',
          '*.body.code',
          'query.code',
          '*.query.code',
          'headers',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? stdout(),
  );
}

/** The message of a thrown value, for a log line: an Error's message, or the value as text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
