/* The peak MAC rate of one core for each kernel family's instruction: 12 independent
   results in registers, so throughput, not latency, bounds it.
   - vpmaddubsw, 256-bit (AVX2; the avx2 bytes kernel, weights up to 7 bits): 32 MACs;
   - vpmaddwd, 256-bit (AVX2; the avx2 words kernel): 16 u8 x i8 MACs widened to 16 bits;
   - vpdpbusd, 128-bit (Cranelift's xmm code on VNNI hosts; VEX-encoded with AVX-VNNI,
     EVEX-encoded with AVX512-VNNI and AVX512-VL): 16 MACs;
   - vpdpbusd, 512-bit (AVX512-VNNI; the avx512 kernels, and ONNX Runtime there): 64 MACs.
   A family the CPU lacks is reported as skipped.
   Usage: gcc -O2 -o /tmp/vnni-peak scripts/vnni-peak.c && /tmp/vnni-peak */
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define R12(op, r) op " %%" r "1, %%" r "0, %%" r "4\n\t" op " %%" r "1, %%" r "0, %%" r "5\n\t" op " %%" r "1, %%" r "0, %%" r "6\n\t" op " %%" r "1, %%" r "0, %%" r "7\n\t" \
  op " %%" r "1, %%" r "0, %%" r "8\n\t" op " %%" r "1, %%" r "0, %%" r "9\n\t" op " %%" r "1, %%" r "0, %%" r "10\n\t" op " %%" r "1, %%" r "0, %%" r "11\n\t" \
  op " %%" r "1, %%" r "0, %%" r "12\n\t" op " %%" r "1, %%" r "0, %%" r "13\n\t" op " %%" r "1, %%" r "0, %%" r "14\n\t" op " %%" r "1, %%" r "0, %%" r "15\n\t"
#define CLOBBER "xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15"
static void report(const char *name, double macs_per_instr, long n, double t){
  printf("%-28s %6.1f GMAC/s, %.2f G instr/s\n", name, 12.0*macs_per_instr*n/t/1e9, 12.0*n/t/1e9);
}
int main(void){
  long n=100000000; double t0;
  __builtin_cpu_init();
  if(__builtin_cpu_supports("avx2")){
    t0=now();
    for(long i=0;i<n;i++) __asm__ volatile(R12("vpmaddubsw","ymm") ::: CLOBBER);
    report("ymm vpmaddubsw (AVX2):", 32, n, now()-t0);
    t0=now();
    for(long i=0;i<n;i++) __asm__ volatile(R12("vpmaddwd","ymm") ::: CLOBBER);
    report("ymm vpmaddwd (AVX2):", 16, n, now()-t0);
  } else printf("ymm vpmaddwd (AVX2): skipped, no AVX2\n");
  if(__builtin_cpu_supports("avxvnni")){
    t0=now();
    for(long i=0;i<n;i++) __asm__ volatile(R12("%{vex%} vpdpbusd","xmm") ::: CLOBBER);
    report("xmm vpdpbusd (AVX-VNNI):", 16, n, now()-t0);
  } else if(__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")){
    t0=now();
    for(long i=0;i<n;i++) __asm__ volatile(R12("%{evex%} vpdpbusd","xmm") ::: CLOBBER);
    report("xmm vpdpbusd (AVX512-VNNI):", 16, n, now()-t0);
  } else printf("xmm vpdpbusd: skipped, no AVX-VNNI or AVX512-VNNI\n");
  if(__builtin_cpu_supports("avx512vnni")){
    t0=now();
    for(long i=0;i<n;i++) __asm__ volatile(R12("vpdpbusd","zmm") ::: CLOBBER);
    report("zmm vpdpbusd (AVX512-VNNI):", 64, n, now()-t0);
  } else printf("zmm vpdpbusd (AVX512-VNNI): skipped, no AVX512-VNNI\n");
}
