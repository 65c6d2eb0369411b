// The ESM entry point. The CommonJS build in dist/lib is the only
// implementation: this file re-exports its named exports, so `import` and
// `require` share one module instance (one Pool class, one PoolError for
// `instanceof`, one process exit hook) and there is no second copy to drift.
//
// Every runtime export of lib/index.ts must be listed here too;
// test/package.test.ts fails when the two lists differ. (`export *` would
// also re-export the CommonJS `__esModule` marker.)
export {
  ObjectPool,
  Pool,
  PoolError,
  Scope,
  defaultBacking,
  formatBytes,
  formatStats,
  growthSlope,
  registerMetrics,
  renderMap,
  toPrometheus,
  tuneMalloc,
} from '../dist/lib/index.js';
