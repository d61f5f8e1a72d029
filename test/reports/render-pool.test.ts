import assert from 'node:assert/strict';
import { renderCard } from '../../src/reports/card.js';
import { createCardRenderer } from '../../src/reports/render-pool.js';
import { sampleRoster } from '../../src/reports/roster.js';
import { cardFileName } from '../../src/reports/store.js';

describe('card render pool', function () {
  this.timeout(60_000);

  it('when a task is aborted mid-render (cancel, time limit), then it stops with an AbortError and the pool still renders afterwards', async () => {
    const renderer = createCardRenderer({ threads: 1 });
    try {
      const task = { title: 'Student ID', issued: '2026-11-22' };
      const [warm] = await renderer.render({ ...task, students: sampleRoster(1) });
      assert.ok(warm, 'the pool renders');

      const controller = new AbortController();
      // 2,000 cards: seconds of work; the abort comes as soon as the thread has started it.
      const long = renderer.render({ ...task, students: sampleRoster(2_000) }, controller.signal);
      setImmediate(() => controller.abort(new Error('cancelled')));
      await assert.rejects(long, (error: Error) => error.name === 'AbortError');

      const after = await renderer.render({ ...task, students: sampleRoster(1, 2) });
      assert.equal(after.length, 1);
    } finally {
      await renderer.close();
    }
  });
});

describe('card render pool results', function () {
  this.timeout(60_000);

  it('when a batch is rendered on the thread, then each card comes back named and byte-identical to renderCard on this thread', async () => {
    const renderer = createCardRenderer({ threads: 1 });
    try {
      const students = sampleRoster(30);
      const task = { title: 'Student ID', issued: '2026-11-22' };
      const cards = await renderer.render({ ...task, students });
      assert.deepEqual(
        cards.map((card) => card.name),
        students.map(cardFileName),
      );
      for (const [i, student] of students.entries()) {
        const here = await renderCard(student, {
          title: task.title,
          issued: new Date(task.issued),
          code: student.id,
        });
        assert.deepEqual(Buffer.from(cards[i]?.pdf ?? []), here, student.id);
      }
    } finally {
      await renderer.close();
    }
  });
});
