export const statusUrl = (id) => `/jobs/${id}`;
/**
 * 202 Accepted, `Location` on the status URL, and a body naming the job and where to watch it,
 * plus whatever `extra` the route learnt on the way (never the job's input).
 */
export function sendAccepted(res, accepted, extra = {}) {
    const url = statusUrl(accepted.id);
    if (accepted.replayed)
        res.set('Idempotent-Replayed', 'true');
    res
        .status(202)
        .location(url)
        .json({ ...extra, ...accepted, statusUrl: url, eventsUrl: `${url}/events` });
}
