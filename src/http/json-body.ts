// The app's JSON body parser: express.json, with the refusal of a body over the limit bounded
// like every other refusal (see drain.ts).
import express, { type Request, type RequestHandler } from 'express';
import { discardLimits } from './drain.js';
import { HttpError } from './errors.js';

/**
 * express.json with a bounded refusal: a body whose Content-Length is over `limitBytes` is a
 * 413 before any of it is read (and is then drained within bounds by the error middleware).
 * A chunked body that passes the limit is read off whole by body-parser before it answers;
 * this cuts that at `limitBytes` + DISCARD_MAX_BYTES, or DISCARD_MAX_MS after the limit.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  // As Express's own handler type, so it takes Express's request.
  const parse: RequestHandler = express.json({ limit: limitBytes });
  return (req, res, next) => {
    if (!req.is('application/json')) {
      parse(req, res, next);
      return;
    }
    if (Number(req.get('content-length')) > limitBytes) {
      next(new HttpError(413, `the JSON body is larger than the limit of ${limitBytes} bytes`));
      return;
    }
    parse(req, res, next);
    // Flowing now: body-parser is reading it. Count beside it.
    if (req.readableFlowing === true && !req.complete) bound(req, limitBytes);
  };
}

function bound(req: Request, limitBytes: number) {
  const { maxBytes, maxMs } = discardLimits(req);
  let read = 0;
  let timer: NodeJS.Timeout | undefined;
  const count = (chunk: Buffer) => {
    read += chunk.length;
    if (read <= limitBytes) return;
    timer ??= setTimeout(() => {
      req.socket.destroy();
    }, maxMs);
    if (read > limitBytes + maxBytes) req.socket.destroy();
  };
  req.on('data', count);
  req.once('close', () => {
    clearTimeout(timer);
    req.off('data', count);
  });
}
