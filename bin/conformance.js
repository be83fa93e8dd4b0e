#!/usr/bin/env node
// The conformance runner's command (package.json `bin`): runs the compiled src/contract/cli.ts.
import { main } from '../dist/src/contract/cli.js';

process.exitCode = await main();
