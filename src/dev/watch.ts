// What `npm run dev` watches, with chokidar rather than `node --watch`: node's watch mode
// restarts one process on the files it imported and gives no say over the grace period, while
// here one watcher restarts every Procfile process in step (waiting for each to shut down as on
// SIGTERM), notices new files, and also reacts to the Procfile and .env. chokidar rather than
// fs.watch({recursive}): it copes with editors that save by rename and with new directories.
import { watch } from 'chokidar';

/** The sources the processes run; public/ is served from disk as it is and needs no restart. */
export const WATCHED = ['src', 'routes', 'jobs', 'workers'];
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs|json)$/;
/** The launcher itself: a change there needs `npm run dev` restarted, not the processes. */
const LAUNCHER = /^src[/\\]dev(\.ts$|[/\\])/;
const SETTLE_MS = 150;

/** Whether a change to `path` (relative to the project) should restart the processes. */
export function restartsOn(path: string, extra: readonly string[] = []): boolean {
  if (extra.includes(path)) return true;
  return SOURCE.test(path) && !LAUNCHER.test(path) && !/\.d\.ts$/.test(path);
}

/**
 * Calls `onChange` with the changed paths once a burst of changes has settled (a save that
 * touches several files restarts once). `files` are watched too (the Procfile, .env), even
 * when they do not exist yet.
 */
export function watchSources(
  files: string[],
  onChange: (paths: string[]) => void,
): { ready: Promise<void>; close: () => Promise<void> } {
  const watcher = watch([...WATCHED, ...files], {
    ignoreInitial: true,
    // Editors that write a temp file and rename it over the original show up as one change.
    atomic: true,
    ignored: (path, stats) => stats?.isFile() === true && !restartsOn(path, files),
  });
  let changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  watcher.on('all', (_event, path) => {
    if (!restartsOn(path, files)) return;
    changed.add(path);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const paths = [...changed];
      changed = new Set();
      onChange(paths);
    }, SETTLE_MS);
  });
  watcher.on('error', (error) => {
    console.error('[dev] watching failed:', error);
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return {
    ready,
    close: () => {
      clearTimeout(timer);
      return watcher.close();
    },
  };
}
