// `npm run bench`: the benchmark suites, one after the other; each writes its own section of
// bench/RESULTS.md. See bench/README.md.
//   --suite http,thumbnails,reports   which suites (default: all)
//   --rounds 5                interleaved rounds per suite
//   http:        --duration 5 --warmup 3 --connections 50 --only bare-json,bare-add,offload
//   thumbnails:  --concurrency N (default: the app's WORKER_CONCURRENCY default)
//   reports:     --concurrency N, --chunk-size N (default: the app's REPORT_CHUNK_SIZE default)
//   --cpu-prof DIR            V8 CPU profiles of the servers' process (http), the worker
//                             (thumbnails), the workers and a bare pass (reports) into DIR
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { cleanup } from './common.js';
import { runHttp } from './http.js';
import { runReports } from './reports.js';
import { runThumbnails } from './thumbnails.js';

const SUITES = ['http', 'thumbnails', 'reports'] as const;

const { values: args } = parseArgs({
  options: {
    suite: { type: 'string', default: SUITES.join(',') },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string', default: 'bare-json,bare-add,offload' },
    concurrency: { type: 'string', default: String(loadConfig({}).WORKER_CONCURRENCY) },
    'chunk-size': { type: 'string', default: String(loadConfig({}).REPORT_CHUNK_SIZE) },
    'cpu-prof': { type: 'string' },
  },
});
const chosen = args.suite.split(',').map((name) => name.trim());
const unknown = chosen.filter((name) => !(SUITES as readonly string[]).includes(name));
if (unknown.length > 0 || chosen.length === 0) {
  throw new Error(`unknown suite ${unknown.join(', ')}; suites are ${SUITES.join(', ')}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the bench's processes and redis-server`);
    void cleanup().finally(() => process.exit(130));
  });
}
// A crash (even a closed stdout) must not leave a redis-server or a worker behind.
process.on('uncaughtException', (error) => {
  console.error(error);
  void cleanup().finally(() => process.exit(1));
});

let pass = true;
try {
  for (const suite of SUITES.filter((name) => chosen.includes(name))) {
    console.log(`\n=== suite ${suite} ===\n`);
    try {
      const rounds = Number(args.rounds);
      const cpuProf = args['cpu-prof'];
      let ok: boolean;
      switch (suite) {
        case 'http':
          ok = await runHttp({
            rounds,
            duration: Number(args.duration),
            warmup: Number(args.warmup),
            connections: Number(args.connections),
            only: args.only,
            cpuProf,
          });
          break;
        case 'thumbnails':
          ok = await runThumbnails({ rounds, concurrency: Number(args.concurrency), cpuProf });
          break;
        case 'reports':
          ok = await runReports({
            rounds,
            concurrency: Number(args.concurrency),
            chunkSize: Number(args['chunk-size']),
            cpuProf,
          });
          break;
      }
      pass &&= ok;
    } finally {
      await cleanup(); // each suite starts from a quiet machine
    }
  }
} finally {
  await cleanup();
}
process.exitCode = pass ? 0 : 1;
