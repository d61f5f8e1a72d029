// The web process's HTTP server, with timeouts that end a slow client before the PaaS router's
// 30 s does: Node's defaults (5 min for a request, checked every 30 s) held a trickled upload
// for 336 s, with its connection, its parser and its partly stored file.
import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config.js';

/** How often Node looks for connections past their timeouts: the cut comes at most this late. */
const CHECK_INTERVAL_MS = 1_000;

export function createHttpServer(
  app: Express,
  config: Pick<Config, 'HTTP_HEADERS_TIMEOUT_MS' | 'HTTP_REQUEST_TIMEOUT_MS'>,
): Server {
  return createServer(
    {
      // The headers must be in within this; the whole request (an upload's body) within
      // requestTimeout. Past either, Node answers 408 and closes; the upload sees its request
      // cut off and removes what it stored. A response may take longer (event streams do).
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    },
    app,
  );
}
