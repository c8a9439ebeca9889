// SPDX-License-Identifier: GPL-2.0
/*
 * The host's own cost of moving a balloon the way QEMU 7.2 does: one
 * madvise(MADV_DONTNEED) per 4 KiB page of populated anonymous memory for
 * an inflate, one madvise(MADV_WILLNEED) per page for a deflate.  No
 * driver can make QEMU's side of the work cheaper than this, so the
 * benchmark prints its figures against it too.
 *
 *   hostcost MIB     prints "inflate_s X deflate_s Y"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double per_page(char *mem, size_t len, int advice)
{
	double t0 = now();
	size_t off;

	for (off = 0; off < len; off += PAGE)
		if (madvise(mem + off, PAGE, advice)) {
			perror("madvise");
			exit(1);
		}
	return now() - t0;
}

int main(int argc, char **argv)
{
	size_t len;
	double inflate, deflate;
	char *mem;

	if (argc != 2 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: %s MIB\n", argv[0]);
		return 2;
	}
	len = (size_t)atol(argv[1]) << 20;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/*
	 * Backed and populated as QEMU's guest RAM is: QEMU asks for huge
	 * pages, so a 4 KiB discard may first split one.
	 */
	madvise(mem, len, MADV_HUGEPAGE);
	memset(mem, 1, len);
	inflate = per_page(mem, len, MADV_DONTNEED);
	deflate = per_page(mem, len, MADV_WILLNEED);
	printf("inflate_s %.4f deflate_s %.4f\n", inflate, deflate);
	return 0;
}
