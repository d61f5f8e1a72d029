/** Mail templates: plain functions from small data to text + HTML, with every value escaped. */
const HTML_ESCAPES = {
    '&': '&amp;',
    '<': '&lt;',
    '>': '&gt;',
    '"': '&quot;',
    "'": '&#39;',
};
export const escapeHtml = (value) => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
function layout(title, body) {
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:auto;padding:1rem;color:#222">
${body}
<p style="color:#888;font-size:.8rem">Sent by offload, from a background worker.</p>
</body></html>`;
}
export function welcome(data) {
    const subject = `Welcome, ${data.name}!`;
    return {
        subject,
        text: `Hi ${data.name},\n\nThanks for signing up. Your account is ready: ${data.appUrl}\n\n— offload\n`,
        html: layout(subject, `<h1>Welcome, ${escapeHtml(data.name)}!</h1>
<p>Thanks for signing up. Your account is ready:
<a href="${escapeHtml(data.appUrl)}">${escapeHtml(data.appUrl)}</a></p>`),
    };
}
export function reportReady(data) {
    const subject = `Your ${data.cards.toLocaleString('en')} ID cards are ready`;
    const until = data.expiresAt.toUTCString();
    return {
        subject,
        text: `Hello,\n\nThe ID cards you asked for are ready: ${data.cards} PDFs in one zip.\n\nDownload: ${data.url}\n\nThe link works until ${until}.\n\n— offload\n`,
        html: layout(subject, `<h1>${escapeHtml(subject)}</h1>
<p>${data.cards} PDFs, one per student, in one zip:
<a href="${escapeHtml(data.url)}">download the ID cards</a>.</p>
<p>The link works until ${escapeHtml(until)}.</p>`),
    };
}
