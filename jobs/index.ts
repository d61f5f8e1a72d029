// The explicit list of jobs: a job not listed here is neither enqueued nor run.
import callWebhook from './call-webhook.js';
import cleanStorage from './clean-storage.js';
import makeThumbnail from './make-thumbnail.js';
import renderCards from './render-cards.js';
import sendEmail from './send-email.js';
import zipReport from './zip-report.js';

export { callWebhook, cleanStorage, makeThumbnail, renderCards, sendEmail, zipReport };
export const jobs = [
  sendEmail,
  makeThumbnail,
  renderCards,
  zipReport,
  cleanStorage,
  callWebhook,
] as const;
