/* matmul: 128x128 integer matrix multiply (C = A * B, then C^T * A on a corner), checksums. */
#include "runtime.h"

#define N 128

static int32_t A[N][N], B[N][N], C[N][N];

int main(void)
{
	uint32_t x = 1, sum = 0, trace = 0, i, j, k;
	for (i = 0; i < N; i++)
		for (j = 0; j < N; j++) {
			x = x * 1664525u + 1013904223u;
			A[i][j] = (int32_t)(x >> 20) - 2048;
			x = x * 1664525u + 1013904223u;
			B[i][j] = (int32_t)(x >> 22) - 512;
		}
	for (i = 0; i < N; i++)
		for (j = 0; j < N; j++) {
			int32_t acc = 0;
			for (k = 0; k < N; k++)
				acc += A[i][k] * B[k][j];
			C[i][j] = acc;
		}
	for (i = 0; i < N; i++) {
		trace += (uint32_t)C[i][i];
		for (j = 0; j < N; j++)
			sum = sum * 31u + (uint32_t)C[i][j];
	}
	printf("C[0][0]=%d C[1][2]=%d C[%d][%d]=%d\n", C[0][0], C[1][2], N - 1, N - 1, C[N - 1][N - 1]);
	printf("trace=%d\n", (int32_t)trace);
	printf("checksum=%08x\n", sum);
	return 0;
}
