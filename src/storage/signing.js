// Signed, expiring download links: /files/<key>?exp=<epoch seconds>&sig=<HMAC-SHA256>.
// A link is a capability for one key until one moment; nothing else about it can be changed.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidKeyError, isKey } from './storage.js';
export const MIN_SECRET_LENGTH = 32;
/** Whole seconds, no leading zero: one spelling per moment, so a signature has one form too. */
const EXP = /^[1-9][0-9]{0,11}$/;
export function createUrlSigner({ secret, publicUrl, }) {
    if (secret.length < MIN_SECRET_LENGTH) {
        throw new Error(`the signing secret must be at least ${MIN_SECRET_LENGTH} characters`);
    }
    // The newline cannot occur in a key or an exp, so each (key, exp) pair signs a distinct text.
    const sign = (key, exp) => createHmac('sha256', secret).update(`${key}\n${exp}`).digest('base64url');
    return {
        signUrl(key, { expiresInMs, absolute = false, now = Date.now() }) {
            if (!isKey(key))
                throw new InvalidKeyError(key);
            if (!Number.isSafeInteger(expiresInMs) || expiresInMs <= 0) {
                throw new RangeError('expiresInMs must be a positive whole number');
            }
            if (absolute && !publicUrl)
                throw new Error('an absolute link needs the public URL');
            // Rounded up: the link lives at least expiresInMs.
            const exp = String(Math.ceil((now + expiresInMs) / 1000));
            const path = `/files/${key}?exp=${exp}&sig=${sign(key, exp)}`;
            return absolute ? `${publicUrl ?? ''}${path}` : path;
        },
        verify(key, exp, sig, now = Date.now()) {
            // A key outside the key rules was never signed: no need to compute anything for it.
            if (!isKey(key) || typeof exp !== 'string' || !EXP.test(exp) || typeof sig !== 'string') {
                return { ok: false, reason: 'bad signature' };
            }
            const expected = Buffer.from(sign(key, exp));
            const given = Buffer.from(sig);
            // timingSafeEqual needs equal lengths; the length of a valid signature is public anyway.
            if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
                return { ok: false, reason: 'bad signature' };
            }
            // Only a genuine link is told it expired, and its expiry is only trusted once signed.
            const expiresAt = new Date(Number(exp) * 1000);
            if (expiresAt.getTime() <= now)
                return { ok: false, reason: 'link expired' };
            return { ok: true, expiresAt };
        },
    };
}
