// pool.readFile(): a whole file in one pool Buffer, read straight into it.
//
//   open (unless given a FileHandle) -> fstat -> one Buffer of st.size -> read until full or EOF
//
// A file that reports size 0 (/proc, pipes, character devices) is read in
// 64 KiB steps into a buffer that doubles, as collect() does. A file that
// shrank between fstat and the reads gives the bytes it had (copied into
// a Buffer of the exact length); one that grew gives st.size bytes.
// Errors reject as Node's own (ENOENT, EISDIR, ...); an abort rejects with
// an AbortError; either way nothing stays allocated and a handle opened
// here is closed. A close that fails after every byte was read rejects
// too, as fs.promises.readFile() does, and the Buffer goes back first.
import { open, type FileHandle } from 'node:fs/promises';

import { invalidArgType, outOfRange, type Caller } from '../errors.js';
import { abortError, moveTo, checkOptions, signalOf, type IoPool } from './io-pool.js';

export interface ReadFileOptions {
  /** Aborts the read between two reads: the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

const STEP = 64 * 1024;

function isFileHandle(v: unknown): v is FileHandle {
  return typeof v === 'object' && v !== null && typeof (v as FileHandle).read === 'function' &&
    typeof (v as FileHandle).stat === 'function' && typeof (v as FileHandle).fd === 'number';
}

export async function readFile(pool: IoPool, file: unknown, options: ReadFileOptions | undefined, maxSize: number, caller: Caller): Promise<Buffer> {
  const own = !isFileHandle(file);
  if (own && typeof file !== 'string' && !(file instanceof URL) && !Buffer.isBuffer(file)) {
    throw invalidArgType('path', 'of type string or an instance of Buffer, URL or FileHandle', file, caller);
  }
  checkOptions(options, caller);
  const signal = signalOf(options?.signal, caller);
  if (signal?.aborted) throw abortError(signal, caller);
  const fh = own ? await open(file as string | URL | Buffer, 'r') : file as FileHandle;
  let whole: Buffer;
  try {
    whole = await readAll(pool, fh, own, signal, maxSize, caller);
  } catch (err) {
    if (own) await fh.close().catch(() => {});
    throw err;
  }
  if (own) {
    try {
      await fh.close();
    } catch (err) {
      try {
        pool.free(whole);
      } catch {
        // The pool closed meanwhile: the Buffer's memory went with it.
      }
      throw err;
    }
  }
  return whole;
}

/** Every byte of `fh` in one pool Buffer; on any failure nothing stays allocated. */
async function readAll(pool: IoPool, fh: FileHandle, own: boolean, signal: AbortSignal | undefined, maxSize: number, caller: Caller): Promise<Buffer> {
  let buf: Buffer | undefined;
  try {
    const { size } = await fh.stat();
    if (size > maxSize) throw outOfRange('the file size', `<= ${maxSize}`, size, caller);
    buf = pool.allocUnsafe(size > 0 ? size : STEP);
    let length = 0;
    for (;;) {
      if (signal?.aborted) throw abortError(signal, caller);
      if (length === buf.length) {
        if (size > 0) break;
        if (buf.length === maxSize) throw outOfRange('the file size', `<= ${maxSize}`, buf.length + 1, caller);
        buf = moveTo(pool, buf, length, Math.min(buf.length * 2, maxSize));
      }
      const { bytesRead } = await fh.read(buf, length, buf.length - length, own ? length : null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return length === buf.length ? buf : moveTo(pool, buf, length, length);
  } catch (err) {
    if (buf !== undefined) pool.free(buf);
    throw err;
  }
}
