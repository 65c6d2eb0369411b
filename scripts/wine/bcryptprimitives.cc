// bcryptprimitives.dll for a Wine that has none (Debian's Wine 8.0; every
// Windows 10 has it): ProcessPrng, the one export of it that Rust's standard
// library takes its random bytes from.
// vitest's bundler (rollup's native parser) is a Rust DLL and will not load
// without it. scripts/test-windows.sh builds this with MinGW-w64 and puts it
// in its own prefix's system32; nothing of mmap-pool uses it.
#include <windows.h>

// RtlGenRandom, exported by advapi32 under this name.
extern "C" BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

extern "C" __declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    const ULONG n = length > 0x10000000 ? 0x10000000 : static_cast<ULONG>(length);
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    length -= n;
  }
  return TRUE;
}
