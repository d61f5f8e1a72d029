// sharp, loaded on first use (the web process checks uploads without decoding them, so it never
// loads libvips), with libvips' decoders narrowed to the accepted formats: a file that slipped
// past the upload check still cannot reach the TIFF, SVG, PDF or other loaders.
import type { Sharp, SharpInput, SharpOptions } from 'sharp';

type SharpFactory = (input?: SharpInput, options?: SharpOptions) => Sharp;

const ACCEPTED_LOADERS = [
  'VipsForeignLoadJpegBuffer',
  'VipsForeignLoadPngBuffer',
  'VipsForeignLoadWebpBuffer',
  'VipsForeignLoadNsgifBuffer',
  'VipsForeignLoadHeifBuffer',
];

let loading: Promise<SharpFactory> | undefined;

export function loadSharp(): Promise<SharpFactory> {
  loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.block({ operation: ['VipsForeignLoad'] });
    sharp.unblock({ operation: ACCEPTED_LOADERS });
    // libvips' operation cache pays off when the same image is worked on again; a worker sees
    // each upload once, so the cache would only hold memory.
    sharp.cache(false);
    // One libvips thread per image: each thread holds its own image buffers, and the default
    // (one per CPU the host reports, 8 on many PaaS dynos) made memory depend on the host. The
    // worker's media concurrency (2 by default) keeps the cores busy instead.
    sharp.concurrency(1);
    return sharp;
  });
  return loading;
}
