/* Force-included into the llama.cpp build of `make venv LLAMA_FLAVOR=amx` (Makefile).
 *
 * GCC 12's <amxtileintrin.h> defines _tile_loadconfig(p) as inline asm whose memory operand is
 * `*(const void **)p`: 8 bytes. The compiler then treats the stores that fill the rest of the
 * 64-byte tile configuration as dead and drops them, so ggml's AMX matmul loads a palette-1
 * config whose row/column fields are stack garbage and `ldtilecfg` faults (#GP, SIGSEGV in
 * ggml_backend_amx_mul_mat on every prompt longer than one token). AMX itself works on these
 * machines. The same instruction with the whole 64 bytes as its operand: */
#if defined(__x86_64__) && defined(__AMX_TILE__)
#include <immintrin.h>
#undef _tile_loadconfig
#define _tile_loadconfig(cfg) \
    __asm__ volatile("ldtilecfg %0" ::"m"(*(const unsigned char(*)[64])(cfg)))
#endif
