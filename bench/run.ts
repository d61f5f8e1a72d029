// `npm run bench`: the benchmark suites, one after the other; each writes its own section of
// bench/RESULTS.md. See bench/README.md.
//   --suite http,thumbnails,reports,...   which suites (default: all but soak)
//   --rounds N                interleaved rounds per suite (default: 5; 3 for pickup, benefit
//                             and email, to keep the whole run near 10 minutes, but 9 for
//                             producer, whose rounds take 2 s and swing most)
//   http:        --duration 5 --warmup 3 --connections 50 --only bare-json,bare-add,bare-enqueue,offload,offload+tracing
//   thumbnails:  --concurrency N (default: the app's WORKER_CONCURRENCY default)
//   reports:     --concurrency N, --chunk-size N (default: the app's REPORT_CHUNK_SIZE default)
//   producer:    --producer-jobs 4000 (jobs per mode per round)
//   e2e:         --jobs 3000 --celery-jobs 1000 (jobs per drain), --only (default: every
//                variant: bare,offload,offload+tracing,bare-logged,bee,celery-prefork,celery-threads)
//   pickup:      --rate 200 --seconds 10 (jobs/s, seconds per round)
//   benefit:     --duration 5 --connections 50 (as http), --benefit-rate 150 (req/s offered)
//   email:       --mails 500 --concurrency N
//   outbox:      --duration 5 --warmup 3 --connections 50 (as http; a private Postgres too)
//   soak:        --minutes 10 (only when asked for: `--suite soak`)
//   memory:      --loads 1,2,3,4 --modes worker,embedded (only when asked for: `--suite memory`)
//   --cpu-prof DIR            V8 CPU profiles of the servers' process (http), the worker
//                             (thumbnails), the workers and a bare pass (reports), the bare
//                             and offload no-op workers (e2e) into DIR
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { runBenefit } from './benefit.js';
import { cleanup } from './common.js';
import { runE2e } from './e2e.js';
import { runEmail } from './email.js';
import { runHttp } from './http.js';
import { runMemory } from './memory.js';
import { runOutbox } from './outbox.js';
import { runPickup } from './pickup.js';
import { runProducer } from './producer.js';
import { runReports } from './reports.js';
import { runSoak } from './soak.js';
import { runThumbnails } from './thumbnails.js';

const SUITES = [
  'http',
  'thumbnails',
  'reports',
  'producer',
  'e2e',
  'pickup',
  'benefit',
  'email',
  'outbox',
  'soak',
  'memory',
] as const;
/** Run only when named: `npm run bench -- --suite soak` (or `memory`). */
const ON_REQUEST: readonly string[] = ['soak', 'memory'];

const { values: args } = parseArgs({
  options: {
    suite: { type: 'string', default: SUITES.filter((s) => !ON_REQUEST.includes(s)).join(',') },
    rounds: { type: 'string' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    concurrency: { type: 'string', default: String(loadConfig({}).WORKER_CONCURRENCY) },
    'chunk-size': { type: 'string', default: String(loadConfig({}).REPORT_CHUNK_SIZE) },
    'cpu-prof': { type: 'string' },
    'producer-jobs': { type: 'string', default: '4000' },
    jobs: { type: 'string', default: '3000' },
    'celery-jobs': { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    'benefit-rate': { type: 'string', default: '150' },
    mails: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    loads: { type: 'string', default: '1,2,3,4' },
    modes: { type: 'string', default: 'worker,embedded' },
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
      const rounds = Number(args.rounds ?? 5);
      const fewerRounds = Number(args.rounds ?? 3);
      const cpuProf = args['cpu-prof'];
      let ok: boolean;
      switch (suite) {
        case 'http':
          ok = await runHttp({
            rounds,
            duration: Number(args.duration),
            warmup: Number(args.warmup),
            connections: Number(args.connections),
            only: args.only ?? 'bare-json,bare-add,bare-enqueue,offload,offload+tracing',
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
        case 'producer':
          ok = await runProducer({
            rounds: Number(args.rounds ?? 9),
            jobs: Number(args['producer-jobs']),
          });
          break;
        case 'e2e':
          ok = await runE2e({
            rounds: Number(args.rounds ?? 5),
            jobs: Number(args.jobs),
            celeryJobs: Number(args['celery-jobs']),
            cpuProf,
            only: args.only,
          });
          break;
        case 'pickup':
          ok = await runPickup({
            rounds: fewerRounds,
            rate: Number(args.rate),
            seconds: Number(args.seconds),
          });
          break;
        case 'benefit':
          ok = await runBenefit({
            rounds: fewerRounds,
            duration: Number(args.duration),
            connections: Number(args.connections),
            rate: Number(args['benefit-rate']),
          });
          break;
        case 'email':
          ok = await runEmail({
            rounds: fewerRounds,
            mails: Number(args.mails),
            concurrency: Number(args.concurrency),
          });
          break;
        case 'outbox':
          ok = await runOutbox({
            rounds: fewerRounds,
            duration: Number(args.duration),
            warmup: Number(args.warmup),
            connections: Number(args.connections),
          });
          break;
        case 'soak':
          ok = await runSoak({ minutes: Number(args.minutes) });
          break;
        case 'memory':
          ok = await runMemory({ loads: args.loads, modes: args.modes });
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
