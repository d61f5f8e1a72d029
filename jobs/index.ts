// The explicit list of jobs: a job not listed here is neither enqueued nor run.
import cleanStorage from './clean-storage.js';
import makeThumbnail from './make-thumbnail.js';
import sendEmail from './send-email.js';

export { cleanStorage, makeThumbnail, sendEmail };
export const jobs = [sendEmail, makeThumbnail, cleanStorage] as const;
