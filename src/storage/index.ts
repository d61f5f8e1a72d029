// File storage for jobs and routes: the interface, the local driver, and signed links.
export * from './storage.js';
export { createLocalStorage } from './local.js';
export { readStored } from './read.js';
export { createUrlSigner, MIN_SECRET_LENGTH, type UrlSigner, type Verdict } from './signing.js';
