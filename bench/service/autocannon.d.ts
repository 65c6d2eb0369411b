// The part of autocannon's programmatic API the service benchmark uses (the
// package ships no types).
declare module 'autocannon' {
  interface Histogram {
    average: number;
    mean: number;
    p50: number;
    p99: number;
    total: number;
  }
  interface Result {
    requests: Histogram;
    latency: Histogram;
    throughput: Histogram;
    errors: number;
    timeouts: number;
    non2xx: number;
    duration: number;
  }
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    method?: string;
    body?: Buffer | string;
    headers?: Record<string, string>;
    pipelining?: number;
    /** Seconds a request may take before it counts as a timeout (default 10). */
    timeout?: number;
  }
  function autocannon(options: Options): Promise<Result>;
  export = autocannon;
}
