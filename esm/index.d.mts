// Types of the ESM entry point (esm/index.mjs): the same declarations as the
// CommonJS build, re-exported.
export * from '../dist/lib/index.js';
