// A refused body (413, or any refusal before the body is read) must still reach the client.
// Many clients send the whole body before they read (Node's fetch with a FormData, browsers'
// forms, scripts on a raw socket): a server that answers and closes with their bytes unread
// makes the kernel reset the connection, and the client sees EPIPE or ECONNRESET instead of
// the answer. So, as nginx's lingering_close and Go's net/http do: answer, keep reading and
// throwing away what the client still sends, up to a bound in bytes and in time, then close.
import type { Application, Request, Response } from 'express';

export interface DiscardLimits {
  /** DISCARD_MAX_BYTES: the most bytes read and thrown away after a refusal. */
  maxBytes: number;
  /** DISCARD_MAX_MS: how long the rest may take to arrive. */
  maxMs: number;
}

/** The defaults of DISCARD_MAX_BYTES and DISCARD_MAX_MS (see .env.example). */
export const DEFAULT_DISCARD: DiscardLimits = { maxBytes: 32 * 1024 * 1024, maxMs: 10_000 };

const limitsByApp = new WeakMap<Application, DiscardLimits>();

/** The bounds set for the request's app (DEFAULT_DISCARD when none were). */
export const discardLimits = (req: Request): DiscardLimits =>
  limitsByApp.get(req.app) ?? DEFAULT_DISCARD;

/** Sets the bounds the error middleware drains refused bodies with, for this app. */
export function setDiscardLimits(app: Application, limits: DiscardLimits): void {
  limitsByApp.set(app, limits);
}

/**
 * Sends `body` as the JSON answer to a request whose body is not all read, then reads and
 * discards the rest (up to the app's bounds) before the response ends. Ending the response is
 * what closes the connection (`Connection: close`), so it waits: the answer itself, with its
 * Content-Length, is on the wire at once, for clients that read while they send.
 */
export function answerThenDrain(req: Request, res: Response, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.status(status).set({
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(payload.length),
    Connection: 'close',
  });
  res.write(payload);
  void drain(req, discardLimits(req)).then((outcome) => {
    res.end();
    // Over a bound: drop the connection now. The client may see a reset, but only after it
    // had DISCARD_MAX_MS to read the answer, or sent DISCARD_MAX_BYTES past the limit.
    if (outcome === 'cut') req.socket.destroy();
  });
}

/**
 * Reads and discards the rest of `req`: 'done' when it ended (or the client hung up), 'cut'
 * when it passed a bound first.
 */
export function drain(req: Request, { maxBytes, maxMs }: DiscardLimits): Promise<'done' | 'cut'> {
  return new Promise((resolve) => {
    let read = 0;
    const finish = (outcome: 'done' | 'cut') => {
      clearTimeout(timer);
      req.off('data', count);
      req.off('end', ended);
      req.off('close', closed);
      resolve(outcome);
    };
    const count = (chunk: Buffer) => {
      read += chunk.length;
      if (read > maxBytes) finish('cut');
    };
    const ended = () => {
      finish('done');
    };
    const closed = () => {
      finish(req.complete ? 'done' : 'cut');
    };
    const timer = setTimeout(() => {
      finish('cut');
    }, maxMs);
    if (req.complete || req.destroyed) {
      finish('done');
      return;
    }
    req.on('data', count);
    req.once('end', ended);
    req.once('close', closed);
    req.resume(); // a refusal may have left it paused (unpiped from a parser)
  });
}
