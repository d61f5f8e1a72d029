// Preloaded by every process: `node --import ./dist/src/telemetry.js dist/src/web.js` (Procfile).
// It does nothing unless the standard OpenTelemetry variables ask for traces: an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or an OTEL_TRACES_EXPORTER
// other than `none`; OTEL_SDK_DISABLED=true wins. Then, before the app's first import, it
// registers import-in-the-middle's ESM hook (how the SDK instruments ES modules) and starts the
// SDK (src/process/telemetry-sdk.ts). Otherwise no OpenTelemetry module is ever loaded.
// A preload reads the environment itself: it runs before the app and its config exist.
import { register } from 'node:module';
import { basename } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const env = process.env;

function tracingRequested(): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map((name) => name.trim()) ?? [];
  if (exporters.length > 0 && exporters.some((name) => name !== '' && name !== 'none')) return true;
  if (exporters.includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** `offload-web`, `offload-worker`: unless OTEL_SERVICE_NAME (or a service.name) says otherwise. */
function defaultServiceName(): string | undefined {
  if (env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '')) {
    return undefined;
  }
  const entry = basename(process.argv[1] ?? '').replace(/\.[cm]?[jt]s$/, '');
  return `offload-${entry === 'main' ? 'worker' : entry}`;
}

// Worker threads (the card renderer's pool) inherit --import: they are not traced.
if (isMainThread && tracingRequested()) {
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  // Only the modules an instrumentation asks for are wrapped, not every import.
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  // @types/node 24 marks module.register deprecated in favour of registerHooks, but
  // import-in-the-middle's hook is an async loader that only module.register runs (Node 22, 24).
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  const { startTelemetry } = await import('./process/telemetry-sdk.js');
  startTelemetry({ serviceName: defaultServiceName() });
  await waitForAllMessagesAcknowledged();
}
