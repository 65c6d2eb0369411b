// Symbol.dispose where the runtime has it, else the symbol Node's own
// polyfill uses, so `using` works on every supported Node (as abstract-level does).
export const dispose: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');
