// File storage for jobs and routes: the interface, the local driver, and signed links.
export * from './storage.js';
export { createLocalStorage } from './local.js';
export { createS3Storage } from './s3.js';
export { readStored } from './read.js';
export { createUrlSigner, MIN_SECRET_LENGTH } from './signing.js';
