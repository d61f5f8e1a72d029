// Preloaded into a child process (NODE_OPTIONS=--import <this file>; Node runs it with its own
// type stripping): appends each npm package the process resolves, by `import` or `require`,
// with who asked for it, to the file LOADED_PACKAGES_FILE names: one `<package> <importer>`
// line per pair, the importer being a package name or `app` (our own code). Synchronous
// appends, so the list is complete up to the moment it is read, however the process ends.
import { appendFileSync } from 'node:fs';
import * as nodeModule from 'node:module';

interface Resolved {
  url: string;
}
interface ResolveContext {
  parentURL?: string | undefined;
}
type RegisterHooks = (hooks: {
  resolve: (
    specifier: string,
    context: ResolveContext,
    next: (specifier: string, context: ResolveContext) => Resolved,
  ) => Resolved;
}) => void;

const file = process.env.LOADED_PACKAGES_FILE;
// module.registerHooks: Node 22.15 and 23.5 on (newer than this project's @types/node).
const { registerHooks } = nodeModule as unknown as { registerHooks?: RegisterHooks };
if (!file || !registerHooks) {
  throw new Error('loaded-packages: needs LOADED_PACKAGES_FILE and Node 22.15 or newer');
}
const packageOf = (url: string | undefined) =>
  url && /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
const seen = new Set<string>();
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    const name = packageOf(resolved.url);
    const line = name && `${name} ${packageOf(context.parentURL) || 'app'}`;
    if (line && !seen.has(line)) {
      seen.add(line);
      appendFileSync(file, `${line}\n`);
    }
    return resolved;
  },
});
