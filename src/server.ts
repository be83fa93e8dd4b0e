// Entry point: settings from the environment (and .env), migrations, then both APIs on one port.
import dotenv from 'dotenv';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { createDb, migrate } from './db.ts';
import { createApp } from './app.ts';
import { BindingError } from './http/bind.ts';

dotenv.config({ quiet: true });

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`Refusing to start. ${err.message}`);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger(config.logLevel);
const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });

try {
  const applied = await migrate(db);
  logger.info({ applied, database: config.databaseUrl ? 'postgres' : `sqlite:${config.dataDir}/app.db` }, applied.length ? 'migrations applied' : 'database up to date');
  const { app, aideer, oneapi, close } = await createApp({ config, db, logger });
  if (aideer && !config.debug && (await aideer.ensureAdmin()) === 'created') logger.info({ username: config.adminUser }, 'AIDeer admin user created from ADMIN_USER');
  if (aideer) logger.info(aideer.models.describe(), 'AIDeer models: live ones call their provider, the others are served by the offline model echo');
  if (config.oneapiRootPhone && oneapi) {
    const root = await oneapi.accounts.ensureRoot(config.oneapiRootPhone);
    if (root === 'created') logger.info('One-API root user created from ONEAPI_ROOT_PHONE');
  }
  const server = app.listen(config.port, config.host, () => {
    const { port } = server.address() as AddressInfo;
    const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    const served = [config.enableAideer && `AIDeer API at ${base}/api/v1`, config.enableOneapi && `One-API at ${base}/api`].filter(Boolean).join(' and ');
    logger.info({ url: base }, `serving ${served || 'nothing (both APIs are switched off)'}`);
  });
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.close(() => {
      void close()
        .then(() => db.destroy())
        .then(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
} catch (err) {
  if (err instanceof BindingError) console.error(`Refusing to start. ${err.message}`);
  else logger.fatal({ err }, 'start-up failed');
  await db.destroy();
  process.exit(1);
}
