// Reading a stored file whole, in a job: a file gone missing fails the job for good, since
// retrying will not bring it back (it expired and was cleaned up, or was never written).
import { buffer } from 'node:stream/consumers';
import { PermanentError } from '../offload/index.js';
import { NotFoundError, type Storage } from './storage.js';

export async function readStored(storage: Storage, key: string, what = key): Promise<Buffer> {
  try {
    return await buffer(await storage.get(key));
  } catch (error) {
    if (error instanceof NotFoundError) throw new PermanentError(`${what} is gone (cleaned up?)`);
    throw error;
  }
}
