// The rate limits (src/http/rate-limit.ts) stay on in every test, counting in Redis as in
// production, but high enough that no test's own traffic (load tests post thousands of
// requests from one address) reaches them; test/security/rate-limit.test.ts sets its own.
export const GENEROUS_RATE_LIMITS: Record<string, string> = {
  RATE_LIMIT_SIGNUP: '1000000/min',
  RATE_LIMIT_THUMBNAILS: '1000000/min',
  RATE_LIMIT_REPORTS: '1000000/min',
  RATE_LIMIT_WEBHOOKS: '1000000/min',
  RATE_LIMIT_ADMIN_FAILURES: '1000000/min',
};
