// node-gyp-build ships no types: it loads the addon that fits this platform
// from prebuilds/ or build/, and returns its exports.
declare module 'node-gyp-build' {
  function load(dir: string): unknown;
  export = load;
}
