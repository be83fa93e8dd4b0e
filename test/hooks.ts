// Root hooks: after the run, the contract-coverage report, and a failure if any response escaped
// the contract check (a request made around test/helpers/http.ts) or any event was off contract.
import { offContractEvents, writeReport } from './helpers/contract.ts';
import { closeSharedServer, databaseLabel, uncheckedRequests } from './helpers/server.ts';

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    await closeSharedServer();
    console.log(`\n  ${writeReport(databaseLabel)}`);
    if (uncheckedRequests.length) {
      throw new Error(
        `responses that no contract check saw (use test/helpers/http.ts): ${[...new Set(uncheckedRequests)].join(', ')}`,
      );
    }
    if (offContractEvents.length)
      throw new Error(`server-sent events off contract:\n  ${offContractEvents.join('\n  ')}`);
  },
};
