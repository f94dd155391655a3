/* The peak vpdpbusd rate of one core: 12 independent accumulators in registers, 128-bit
   (AVX-VNNI, what Cranelift emits) and 512-bit (AVX512-VNNI, what ONNX Runtime uses).
   Usage: gcc -O2 -o /tmp/vnni-peak scripts/vnni-peak.c && /tmp/vnni-peak */
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define R12(op, r) op " %%" r "1, %%" r "0, %%" r "4\n\t" op " %%" r "1, %%" r "0, %%" r "5\n\t" op " %%" r "1, %%" r "0, %%" r "6\n\t" op " %%" r "1, %%" r "0, %%" r "7\n\t" \
  op " %%" r "1, %%" r "0, %%" r "8\n\t" op " %%" r "1, %%" r "0, %%" r "9\n\t" op " %%" r "1, %%" r "0, %%" r "10\n\t" op " %%" r "1, %%" r "0, %%" r "11\n\t" \
  op " %%" r "1, %%" r "0, %%" r "12\n\t" op " %%" r "1, %%" r "0, %%" r "13\n\t" op " %%" r "1, %%" r "0, %%" r "14\n\t" op " %%" r "1, %%" r "0, %%" r "15\n\t"
int main(void){
  long n=100000000; double t0,t1;
  t0=now();
  for(long i=0;i<n;i++) __asm__ volatile(R12("%{vex%} vpdpbusd","xmm") ::: "xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t1=now(); printf("xmm (AVX-VNNI):  %.1f GMAC/s, %.2f G instr/s\n", 12.0*16*n/(t1-t0)/1e9, 12.0*n/(t1-t0)/1e9);
  t0=now();
  for(long i=0;i<n;i++) __asm__ volatile(R12("vpdpbusd","zmm") ::: "xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t1=now(); printf("zmm (AVX512-VNNI): %.1f GMAC/s, %.2f G instr/s\n", 12.0*64*n/(t1-t0)/1e9, 12.0*n/(t1-t0)/1e9);
}
