export class NotFoundError extends Error {
    key;
    constructor(key) {
        super(`no file ${key}`);
        this.key = key;
        this.name = 'NotFoundError';
    }
}
/** A key that breaks the key rules: a bug in the caller, never a user's typo. */
export class InvalidKeyError extends Error {
    key;
    constructor(key) {
        super(`invalid storage key ${JSON.stringify(key.slice(0, 80))}`);
        this.key = key;
        this.name = 'InvalidKeyError';
    }
}
export const MAX_KEY_LENGTH = 200;
/**
 * Segments of lower-case letters, digits, `_`, `.` and `-`, each starting with a letter or a
 * digit, joined by single slashes. That rules out `..`, `.`, empty segments, a leading slash,
 * backslashes, NUL and dotfiles (the local driver's temp files start with a dot), so a key can
 * never name a path outside the storage directory; lower case only, so two keys cannot collide
 * on a case-insensitive file system. Longer keys would break the 255-byte file-name limit.
 */
const KEY = /^[a-z0-9][a-z0-9_.-]*(?:\/[a-z0-9][a-z0-9_.-]*)*$/;
export function isKey(key) {
    return key.length <= MAX_KEY_LENGTH && KEY.test(key);
}
export function assertKey(key) {
    if (!isKey(key))
        throw new InvalidKeyError(key);
}
/** A prefix for list(): '' (everything) or the start of some valid key. */
export function assertPrefix(prefix) {
    if (prefix !== '' && !isKey(prefix) && !isKey(`${prefix}x`))
        throw new InvalidKeyError(prefix);
}
/** Only raster images are shown inline; SVG is left out because it can carry script. */
const TYPES = {
    avif: 'image/avif',
    gif: 'image/gif',
    jpeg: 'image/jpeg',
    jpg: 'image/jpeg',
    png: 'image/png',
    webp: 'image/webp',
    csv: 'text/csv',
    json: 'application/json',
    pdf: 'application/pdf',
    txt: 'text/plain',
    zip: 'application/zip',
};
/** The content type a key's extension implies; unknown extensions are plain bytes. */
export function contentTypeOf(key) {
    const extension = /\.([a-z0-9]+)$/.exec(key)?.[1];
    return (extension && TYPES[extension]) ?? 'application/octet-stream';
}
