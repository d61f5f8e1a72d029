const ACCEPTED_LOADERS = [
    'VipsForeignLoadJpegBuffer',
    'VipsForeignLoadPngBuffer',
    'VipsForeignLoadWebpBuffer',
    'VipsForeignLoadNsgifBuffer',
    'VipsForeignLoadHeifBuffer',
];
let loading;
export function loadSharp() {
    loading ??= import('sharp').then(({ default: sharp }) => {
        sharp.block({ operation: ['VipsForeignLoad'] });
        sharp.unblock({ operation: ACCEPTED_LOADERS });
        // libvips' operation cache pays off when the same image is worked on again; a worker sees
        // each upload once, so the cache would only hold memory.
        sharp.cache(false);
        return sharp;
    });
    return loading;
}
