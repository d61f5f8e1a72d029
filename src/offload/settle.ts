// A 503 means the job never runs. An enqueue whose command was written but not answered (a
// Redis slower than the command timeout, a connection lost mid-command) may still be carried
// out when Redis catches up. So before the 503, the enqueue is settled: a script sent on the
// same connection, so Redis runs it after the add if it runs the add at all (one connection's
// commands run in order, and a dropped connection's last commands before anything a new one
// sends), marks the job refused before any worker can start it. A marked job is dropped at
// pickup, as a cancelled one is. The script's answer says what happened; while Redis does not
// answer, the script waits in line behind the add, and is sent again once reconnected.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.js';

/** What settling found. `refused` and `absent` mean the job will never run. */
export type Settled = 'absent' | 'refused' | 'started' | 'other';

/** What a refused job's status says (its `error`). */
export const REFUSED_REASON = 'refused: Redis did not confirm the enqueue in time (answered 503)';

// KEYS[1]: the job's key. ARGV[1]: the enqueue's claim ('' for a random id: the job is ours),
// ARGV[2]: the reason, as a JSON string. The mark goes first in the job's JSON data (the last
// of two equal keys wins in JSON.parse, so a cancel written later still reads).
const REFUSE = `
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return 'absent' end
if ARGV[1] ~= '' and not string.find(data, ARGV[1], 1, true) then return 'other' end
if string.sub(data, 1, 11) == '{"outcome":' then return 'refused' end
local tree, i = {KEYS[1]}, 1
while i <= #tree do
  local key = tree[i]
  if redis.call('HEXISTS', key, 'processedOn') == 1 or redis.call('HEXISTS', key, 'finishedOn') == 1 then
    return 'started'
  end
  for _, child in ipairs(redis.call('SMEMBERS', key .. ':dependencies')) do
    tree[#tree + 1] = child
  end
  i = i + 1
end
local now = redis.call('TIME')
local mark = '{"outcome":"cancelled","outcomeAt":' .. (now[1] * 1000 + math.floor(now[2] / 1000)) ..
  ',"refused":true,"reason":' .. ARGV[2]
for _, key in ipairs(tree) do
  local d = redis.call('HGET', key, 'data')
  if d == '{}' then d = mark .. '}' elseif d then d = mark .. ',' .. string.sub(d, 2) end
  if d then redis.call('HSET', key, 'data', d) end
end
return 'refused'
`;

export interface SettleOptions {
  connection: Redis | Cluster;
  log: Logger;
  /** How long a request waits for the answer before it answers 503 anyway. */
  waitMs: number;
}

const untilReady = (connection: Redis | Cluster, ms: number) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    connection.once('ready', done);
  });

/**
 * Settles the enqueue of `jobKey` (see the top of this file). Answers what happened, or
 * `refused` after `waitMs` without an answer: the script then waits in line behind the add,
 * and goes on being sent (in the background, logged) until Redis answers it.
 */
export async function settle(
  { connection, log, waitMs }: SettleOptions,
  jobKey: string,
  claim = '',
): Promise<Settled> {
  const reason = JSON.stringify(REFUSED_REASON);
  const attempt = async (): Promise<Settled | undefined> => {
    if (connection.status !== 'ready') {
      await untilReady(connection, 250);
      return undefined;
    }
    try {
      return (await connection.eval(REFUSE, 1, jobKey, claim, reason)) as Settled;
    } catch {
      return undefined; // timed out again, or the connection went: it is sent again
    }
  };
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const settled = await attempt();
    if (settled) return settled;
  }
  void (async () => {
    const giveUp = Date.now() + 10 * 60_000;
    while (Date.now() < giveUp) {
      const settled = await attempt();
      if (settled === 'started') {
        log.error({ jobKey }, 'an enqueue answered 503 was carried out and started anyway');
      }
      if (settled) return;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    log.error({ jobKey }, 'could not settle an enqueue answered 503: Redis never answered');
  })();
  return 'refused';
}

/**
 * True when Redis certainly did not run the command: it answered with an error (a ReplyError:
 * it ran and refused it), or ioredis never wrote it (no connection, and producers queue
 * nothing offline). Anything else (a timeout, a connection lost mid-command) needs settling.
 */
export function surelyNotAdded(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === 'ReplyError' || /Stream isn't writeable/.test(error.message);
}
