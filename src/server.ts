// Entry point: settings from the environment (and .env), migrations, then both APIs on one port;
// on SIGTERM or SIGINT, a drain (src/http/server.ts, App.drain) and exit 0.
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { createDb, describeDatabase, migrate, unreachableReason } from './db.ts';
import { createApp } from './app.ts';
import { BindingError } from './http/bind.ts';
import { createHttpServer } from './http/server.ts';

dotenv.config({ quiet: true });
// A reader of stderr that went away must not turn the next message into a crash.
process.stderr.on('error', () => undefined);

/** One line on stderr and exit 1: start-up cannot go on, and the line says why. */
function refuse(message: string): never {
  console.error(`Refusing to start. ${message}`);
  process.exit(1);
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) refuse(err.message);
  throw err;
}

/** The setting a listen error is about, and the error in words. */
function listenProblem(err: NodeJS.ErrnoException, host: string, port: number): string {
  const setting = ['EADDRINUSE', 'EACCES'].includes(err.code ?? '') ? `PORT=${port}` : `HOST=${host}`;
  const hint =
    err.code === 'EADDRINUSE'
      ? ' (another process listens there)'
      : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
        ? ' (the name does not resolve)'
        : err.code === 'EADDRNOTAVAIL'
          ? ' (not an address of this machine)'
          : '';
  return `Cannot listen on ${setting}: ${err.code ?? 'error'}${hint}: ${err.message}`;
}

const logger = createLogger(config.logLevel);
const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger });
const database = describeDatabase(config);

try {
  const applied = await migrate(db);
  logger.info({ applied, database }, applied.length ? 'migrations applied' : 'database up to date');
  const app = await createApp({ config, db, logger });
  const { aideer, oneapi } = app;
  if (aideer && !config.debug && (await aideer.ensureAdmin()) === 'created')
    logger.info({ username: config.adminUser }, 'AIDeer admin user created from ADMIN_USER');
  if (aideer)
    logger.info(
      aideer.models.describe(),
      'AIDeer models: live ones call their provider, the others are served by the offline model echo',
    );
  if (config.oneapiRootPhone && oneapi) {
    const root = await oneapi.accounts.ensureRoot(config.oneapiRootPhone);
    if (root === 'created') logger.info('One-API root user created from ONEAPI_ROOT_PHONE');
  }
  const http = createHttpServer(app.app, { maxHeaderBytes: config.maxHeaderBytes });
  // Before listening: a signal that comes as soon as the server is reachable must find its handler.
  let stopping = false;
  const shutdown = async (signal: string) => {
    // npm and a process-group signal can both deliver one: the drain under way covers both.
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    const deadlineAt = started + config.shutdownTimeoutSeconds * 1000;
    logger.info(
      { signal, timeoutSeconds: config.shutdownTimeoutSeconds },
      'shutting down: draining requests and tasks',
    );
    // Should closing the database or Redis hang past the drain, exit anyway.
    setTimeout(() => exit(1, 'shutdown overran its time limit'), deadlineAt - started + 10_000).unref();
    const appDrained = app.drain(deadlineAt);
    const [cut] = await Promise.all([http.drain(deadlineAt, appDrained), appDrained]);
    await app.close();
    await db.destroy();
    logger.info({ ms: Date.now() - started, requestsCut: cut }, 'stopped');
    exit(0);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    shutdown(signal).catch((err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      exit(1);
    });
  };
  const exit = (code: number, why?: string) => {
    if (why) logger.error(why);
    // Back to the default action: should exit itself ever stall, one more signal ends the process.
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.exit(code);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const { port } = await http.listen(config.port, config.host).catch(async (err: NodeJS.ErrnoException) => {
    await app.close();
    await db.destroy();
    refuse(listenProblem(err, config.host, config.port));
  });
  const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const served = [
    config.enableAideer && `AIDeer API at ${base}/api/v1`,
    config.enableOneapi && `One-API at ${base}/api`,
  ]
    .filter(Boolean)
    .join(' and ');
  logger.info({ url: base, pid: process.pid }, `serving ${served || 'nothing (both APIs are switched off)'}`);
} catch (err) {
  const unreachable = unreachableReason(err);
  await db.destroy().catch(() => undefined);
  if (unreachable)
    refuse(
      `Cannot reach the database (${config.databaseUrl ? 'DATABASE_URL' : 'DATA_DIR'}: ${database}): ${unreachable}`,
    );
  if (err instanceof BindingError) refuse(err.message);
  logger.fatal({ err }, 'start-up failed');
  process.exit(1);
}
