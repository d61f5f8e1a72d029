/**
 * The redis-server flags this project recommends (and so uses for its private servers in
 * development, tests and benchmarks): durable enough for queues, never evicting a job.
 */
export function redisServerArgs(port: number, dir: string): string[] {
  // prettier-ignore
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--appendonly', 'yes', // AOF: a restart keeps the queues
    '--appendfsync', 'everysec', // at most about a second of writes lost if Redis crashes
    '--maxmemory-policy', 'noeviction', // a full Redis refuses writes instead of dropping jobs
    '--save', '',
  ];
}
