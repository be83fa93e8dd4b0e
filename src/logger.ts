import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout. Credentials are redacted wherever they might be logged by mistake. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['*.authorization', '*.Authorization', '*.password', '*.access_token', '*.refresh_token', '*.token', '*.code', 'headers'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
