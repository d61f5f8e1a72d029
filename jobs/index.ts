// The explicit list of jobs: a job not listed here is neither enqueued nor run.
import sendEmail from './send-email.js';

export { sendEmail };
export const jobs = [sendEmail] as const;
