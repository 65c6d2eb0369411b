// mmap-pool: mmap-backed memory pools whose memory JS sees as ordinary Buffers.
export { Pool } from './pool.js';
export type { AllocOptions, TypedArrayConstructor } from './views.js';
export { Scope } from './scope.js';
export { PoolError, type PoolErrorCode } from './errors.js';
export { defaultBacking, type Backing, type PoolOptions } from './options.js';
export { formatStats, formatBytes } from './stats.js';
export type { PoolStats, PoolDump, SizeClassStats, ChunkDump, RunDump, AllocationDump } from './stats.js';
export { ObjectPool, type ObjectPoolOptions, type ObjectPoolStats, type Lease } from './object-pool.js';
export { toPrometheus, registerMetrics, type MetricsRegistry, type MetricsRegistration, type PromCollector, type StatsSource } from './metrics.js';
export { growthSlope, type Monitor, type MonitorOptions, type GrowthInfo } from './monitor.js';
export { renderMap, type RenderMapOptions } from './render-map.js';
export type { LeakDetection, LeakReport } from './leaks.js';
export type { PressureEvent, PressureLevel, PressureThresholds } from './pressure.js';
