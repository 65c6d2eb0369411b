// mmap-pool: mmap-backed memory pools whose memory JS sees as ordinary Buffers.
export type { CollectOptions } from './io/collect.js';
export type { ReadFileOptions } from './io/read-file.js';
export type { PoolReader } from './io/onread.js';
export { Pool } from './pool.js';
export type { AllocOptions } from './options.js';
export type { TypedArrayConstructor } from './buffers/typed.js';
export { Scope } from './scope.js';
export { tuneMalloc, type TuneMallocOptions } from './tune-malloc.js';
export { PoolError, type PoolErrorCode } from './errors.js';
export { defaultBacking, type Backing, type PoolOptions } from './options.js';
export { formatStats, formatBytes } from './observe/stats.js';
export type { PoolStats, PoolDump, SizeClassStats, ChunkDump, RunDump, AllocationDump } from './observe/stats.js';
export { ObjectPool, type ObjectPoolOptions, type ObjectPoolStats, type Lease } from './object-pool.js';
export { toPrometheus, registerMetrics, type MetricsRegistry, type MetricsRegistration, type PromCollector, type StatsSource } from './observe/metrics.js';
export { growthSlope, type Monitor, type MonitorOptions, type GrowthInfo } from './observe/monitor.js';
export { renderMap, type RenderMapOptions } from './observe/render-map.js';
export type { LeakDetection, LeakReport } from './observe/leaks.js';
export type { PressureEvent, PressureLevel, PressureThresholds } from './observe/pressure.js';
