// The explicit list of jobs: a job not listed here is neither enqueued nor run.
import cleanStorage from './clean-storage.js';
import makeThumbnail from './make-thumbnail.js';
import renderCards from './render-cards.js';
import sendEmail from './send-email.js';
import zipReport from './zip-report.js';

export { cleanStorage, makeThumbnail, renderCards, sendEmail, zipReport };
export const jobs = [sendEmail, makeThumbnail, renderCards, zipReport, cleanStorage] as const;
