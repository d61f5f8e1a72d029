// The demo page: plain browser JavaScript, no build step. Text goes in with textContent only,
// so nothing a server or a user sends is ever parsed as HTML.

/** A job in any other state is finished (completed, failed, expired, cancelled, ...). */
const LIVE_STATES = new Set(['waiting', 'delayed', 'active']);
const POLL_MS = 1000;

const $ = (root, role) => root.querySelector(`[data-role="${role}"]`);

/** fetch, timed from the call to the whole answer; the body parsed as JSON when it is JSON. */
async function timedFetch(url, options) {
  const started = performance.now();
  const response = await fetch(url, options);
  const text = await response.text();
  const ms = performance.now() - started;
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (a proxy's error page): shown as text
  }
  return { response, body, ms };
}

function showTiming(box, { response, ms }) {
  $(box, 'timing').textContent =
    `${Math.round(ms)} ms · ${response.status} ${response.statusText || ''}`.trim();
  box.dataset.ms = String(ms);
}

function showState(box, text, { error = false } = {}) {
  const state = $(box, 'state');
  state.textContent = text;
  state.classList.toggle('error', error);
}

/** What a refused request says: its error and every problem it names. */
function describeError({ response, body }) {
  if (body && typeof body === 'object') {
    const problems = Array.isArray(body.problems) ? `: ${body.problems.join('; ')}` : '';
    return `${response.status} ${body.error ?? 'error'}${problems}`;
  }
  return `${response.status} ${String(body).slice(0, 200)}`;
}

/** 0..100 from a job's progress: a number, or {done, total} (a workflow). */
function percentOf(progress) {
  if (typeof progress === 'number') return progress;
  if (progress && typeof progress === 'object' && progress.total > 0) {
    return (100 * progress.done) / progress.total;
  }
  return 0;
}

function progressText(progress) {
  if (progress && typeof progress === 'object' && 'total' in progress) {
    return ` ${progress.done} of ${progress.total}`;
  }
  return typeof progress === 'number' && progress > 0 ? ` ${Math.round(progress)} %` : '';
}

/**
 * Follows a job until it is finished, calling `onStatus` with each status: live from its event
 * stream, or by polling its status URL when the stream is unavailable or drops. Resolves with
 * the final status.
 */
function followJob({ statusUrl, eventsUrl }, onStatus) {
  return new Promise((resolve) => {
    let done = false;
    const update = (status) => {
      if (done) return;
      onStatus(status);
      if (!LIVE_STATES.has(status.state)) {
        done = true;
        resolve(status);
      }
    };
    const poll = async () => {
      while (!done) {
        try {
          const { response, body } = await timedFetch(statusUrl);
          if (response.ok) update(body);
          else if (response.status === 404) {
            update({ state: 'gone', error: 'the job is no longer known' });
          }
        } catch {
          // the server is away for a moment: try again
        }
        if (!done) await new Promise((next) => setTimeout(next, POLL_MS));
      }
    };
    if (typeof EventSource !== 'function') {
      void poll();
      return;
    }
    const source = new EventSource(eventsUrl);
    const onEvent = (event) => update(JSON.parse(event.data));
    source.addEventListener('status', onEvent);
    for (const final of ['completed', 'failed', 'expired', 'cancelled']) {
      source.addEventListener(final, onEvent);
    }
    // The stream ends after the final event (whatever its name), or drops: read the status
    // instead of letting EventSource reconnect.
    source.addEventListener('error', () => {
      source.close();
      void poll();
    });
  });
}

/** "completed", or "failed: reason": what a person needs to read about a final status. */
function finalText(status) {
  const reason = status.error ? `: ${status.error.message ?? status.error}` : '';
  return `${status.state}${reason}`;
}

// Welcome email: the same signup inline, then offloaded, each timed. With a database an address
// registers once (409 after), so the form starts with a fresh one.
{
  const email = document.querySelector('#signup-form input[name=email]');
  email.value = `ann+${Date.now().toString(36)}@example.com`;
}
document.querySelector('#signup-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector('button');
  button.disabled = true;
  const body = JSON.stringify(Object.fromEntries(new FormData(form)));
  const post = (query) =>
    timedFetch(`/signup${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
  const inline = document.querySelector('#signup-inline');
  const offloaded = document.querySelector('#signup-offloaded');
  for (const box of [inline, offloaded]) {
    $(box, 'timing').textContent = '…';
    showState(box, '');
    delete box.dataset.ms;
  }
  $(offloaded, 'user').textContent = '';
  $(offloaded, 'mail').textContent = '';
  try {
    const sync = await post('?mode=sync');
    showTiming(inline, sync);
    if (sync.response.ok) showState(inline, 'mail sent inside the request');
    else showState(inline, describeError(sync), { error: true });

    const queued = await post('');
    showTiming(offloaded, queued);
    if (!queued.response.ok) {
      showState(offloaded, describeError(queued), { error: true });
      return;
    }
    // With a database, the user row committed with its job (the outbox): show it.
    const { user } = queued.body;
    if (user) $(offloaded, 'user').textContent = `user row ${user.id} · ${user.email}`;
    showState(offloaded, 'queued; a worker sends the mail…');
    const final = await followJob(queued.body, (status) =>
      showState(offloaded, `job ${status.state}`),
    );
    showState(offloaded, final.state === 'completed' ? 'mail sent by a worker' : finalText(final), {
      error: final.state !== 'completed',
    });
    const mail = final.state === 'completed' ? final.result : undefined;
    if (mail && mail.skipped) $(offloaded, 'mail').textContent = `no mail: ${mail.skipped}`;
    else if (mail && mail.messageId) {
      $(offloaded, 'mail').textContent = `mail ${mail.messageId}`;
      if (mail.via === 'outbox') {
        const link = document.createElement('a');
        link.href = '/dev/outbox';
        link.textContent = 'open the outbox';
        $(offloaded, 'mail').append(' · ', link);
      }
    }
  } catch (error) {
    showState(offloaded, `request failed: ${error.message}`, { error: true });
  } finally {
    button.disabled = false;
  }
});

/** Runs one offloaded request whose job reports progress, into a result box. */
async function runWithProgress(box, request, showResult) {
  const progress = $(box, 'progress');
  progress.value = 0;
  $(box, 'output').replaceChildren();
  $(box, 'timing').textContent = '…';
  showState(box, '');
  let answer;
  try {
    answer = await request();
  } catch (error) {
    showState(box, `request failed: ${error.message}`, { error: true });
    return;
  }
  showTiming(box, answer);
  if (!answer.response.ok) {
    showState(box, describeError(answer), { error: true });
    return;
  }
  showState(box, 'accepted; waiting for a worker…');
  const final = await followJob(answer.body, (status) => {
    progress.value = percentOf(status.progress);
    showState(box, `job ${status.state}${progressText(status.progress)}`);
  });
  if (final.state === 'completed') {
    progress.value = 100;
    showState(box, 'completed');
    showResult(final.result);
  } else {
    showState(box, finalText(final), { error: true });
  }
}

// Thumbnail: upload, answer at once, live progress, then the thumbnails.
document.querySelector('#thumbnail-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const box = document.querySelector('#thumbnail-result');
  const button = form.querySelector('button');
  button.disabled = true;
  await runWithProgress(
    box,
    () => timedFetch('/thumbnails', { method: 'POST', body: new FormData(form) }),
    (result) => {
      const figures = (result?.thumbnails ?? []).map((thumb) => {
        const figure = document.createElement('figure');
        const img = document.createElement('img');
        img.src = thumb.url;
        img.alt = `thumbnail ${thumb.width}×${thumb.height}`;
        img.width = thumb.width;
        img.height = thumb.height;
        const caption = document.createElement('figcaption');
        caption.textContent = `${thumb.width}×${thumb.height}, ${(thumb.bytes / 1024).toFixed(1)} kB`;
        figure.append(img, caption);
        return figure;
      });
      $(box, 'output').replaceChildren(...figures);
    },
  );
  button.disabled = false;
});

// ID cards: a workflow whose progress counts cards, then the download link.
document.querySelector('#cards-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const box = document.querySelector('#cards-result');
  const button = form.querySelector('button');
  button.disabled = true;
  const data = new FormData(form);
  await runWithProgress(
    box,
    () =>
      timedFetch('/reports', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: data.get('email'), sample: Number(data.get('sample')) }),
      }),
    (result) => {
      const link = document.createElement('a');
      link.href = result.url;
      link.textContent = `Download ${result.cards} ID cards (zip, ${(result.bytes / 1048576).toFixed(1)} MB)`;
      link.download = '';
      $(box, 'output').replaceChildren(link);
    },
  );
  button.disabled = false;
});
