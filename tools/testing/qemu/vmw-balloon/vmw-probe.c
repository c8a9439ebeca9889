// SPDX-License-Identifier: GPL-2.0
/*
 * vmw-probe: one VMware balloon backdoor command from a guest's user space,
 * to feed the vmware-balloon device input no driver sends.  Runs as root
 * (iopl(3)) in the rig's busybox initramfs, so it needs no libc: built with
 * "gcc -static -nostdlib -Os", it makes its own system calls.
 *
 *   vmw-probe CMD ARG1 ARG2 [MAGIC]
 *	prints "status=S ebx=B ecx=C" (hex) after "inl" on port 0x5670 with
 *	EAX=MAGIC (the balloon's, by default), ECX=CMD, EBX=ARG1, ESI=ARG2.
 *   vmw-probe batch CMD COUNT PFN... [-- CMD COUNT PFN...]...
 *	fills a batch page of its own with the PFNs (hex; "v" is a page of
 *	its own it does not mind losing; "v1" the PFN after the 2 MiB
 *	boundary at or below it, never 2 MiB aligned, for a misaligned
 *	2 MiB page the host must refuse without touching memory) and sends
 *	CMD with that page and COUNT; prints "status=S entries=s0,s1,..."
 *	per group.  The groups run in one process, on the same pages.
 *
 * Numbers are hexadecimal, with or without "0x".
 */

#define SYS_write	1
#define SYS_open	2
#define SYS_close	3
#define SYS_pread64	17
#define SYS_exit	60
#define SYS_iopl	172

#define PORT		0x5670
#define MAGIC		0x456c6d6fUL

typedef unsigned long ulong;

/* Two whole pages, page-aligned, out of three: the batch and the victim. */
static char pages[3 * 4096];
#define PAGE_ALIGNED(p)	((void *)(((ulong)(p) + 4095) & ~4095UL))
static ulong *batch;
static char *victim;

static long sys4(long n, long a, long b, long c, long d)
{
	register long r10 asm("r10") = d;
	long ret;

	asm volatile ("syscall"
		      : "=a" (ret)
		      : "a" (n), "D" (a), "S" (b), "d" (c), "r" (r10)
		      : "rcx", "r11", "memory");
	return ret;
}

static void out(const char *s)
{
	const char *e = s;

	while (*e)
		e++;
	sys4(SYS_write, 1, (long)s, e - s, 0);
}

static void out_hex(ulong v)
{
	char buf[19], *p = buf + sizeof(buf);

	*--p = 0;
	do {
		*--p = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	out(p);
}

static void die(const char *msg)
{
	out("vmw-probe: ");
	out(msg);
	out("\n");
	sys4(SYS_exit, 2, 0, 0, 0);
	__builtin_unreachable();
}

static ulong hex(const char *s)
{
	ulong v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s)
		die("empty number");
	for (; *s; s++) {
		int d = 0;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			die("not a hexadecimal number");
		v = v << 4 | d;
	}
	return v;
}

static int same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* The PFN behind a (touched) page of ours, from /proc/self/pagemap. */
static ulong pfn_of(void *addr)
{
	ulong entry = 0;
	long fd = sys4(SYS_open, (long)"/proc/self/pagemap", 0, 0, 0);

	if (fd < 0)
		die("cannot open /proc/self/pagemap");
	if (sys4(SYS_pread64, fd, (long)&entry, 8,
		 (long)((ulong)addr / 4096 * 8)) != 8)
		die("cannot read /proc/self/pagemap");
	sys4(SYS_close, fd, 0, 0, 0);
	if (!(entry >> 63) || !(entry & ((1UL << 55) - 1)))
		die("page not present, or no PFN (not root?)");
	return entry & ((1UL << 55) - 1);
}

static ulong backdoor(ulong magic, ulong cmd, ulong arg1, ulong arg2,
		      ulong *ebx, ulong *ecx)
{
	ulong status, edx, esi;

	asm volatile ("inl %%dx"
		      : "=a" (status), "=c" (*ecx), "=d" (edx), "=b" (*ebx),
			"=S" (esi)
		      : "0" (magic), "1" (cmd), "2" (PORT), "3" (arg1),
			"4" (arg2)
		      : "memory");
	return status;
}

static int run(int argc, char **argv)
{
	ulong ebx, ecx, status, victim_pfn, count, i;
	int n;

	if (argc < 4)
		die("usage: vmw-probe CMD ARG1 ARG2 [MAGIC] | batch CMD COUNT PFN ...");
	if (sys4(SYS_iopl, 3, 0, 0, 0))
		die("iopl(3) failed (not root?)");

	if (!same(argv[1], "batch")) {
		status = backdoor(argc > 4 ? hex(argv[4]) : MAGIC, hex(argv[1]),
				  hex(argv[2]), hex(argv[3]), &ebx, &ecx);
		out("status=");
		out_hex(status);
		out(" ebx=");
		out_hex(ebx);
		out(" ecx=");
		out_hex(ecx);
		out("\n");
		return 0;
	}

	batch = PAGE_ALIGNED(pages);
	victim = (char *)batch + 4096;
	victim[0] = 1;
	batch[0] = 0;
	victim_pfn = pfn_of(victim);
	/* Groups "CMD COUNT PFN..." separated by "--", one process. */
	for (n = 2; n < argc; n++) {
		int first = n + 2, nr = 0;

		if (first > argc)
			die("batch: CMD and COUNT needed");
		count = hex(argv[n + 1]);
		for (n = first; n < argc && !same(argv[n], "--"); n++) {
			ulong pfn;

			if (same(argv[n], "v"))
				pfn = victim_pfn;
			else if (same(argv[n], "v1"))
				pfn = (victim_pfn & ~511UL) + 1;
			else
				pfn = hex(argv[n]);
			if (nr == 512)
				die("batch: more than 512 PFNs");
			batch[nr++] = pfn << 12;
		}
		status = backdoor(MAGIC, hex(argv[first - 2]), pfn_of(batch),
				  count, &ebx, &ecx);
		out("status=");
		out_hex(status);
		out(" entries=");
		for (i = 0; i < (ulong)nr; i++) {
			if (i)
				out(",");
			out_hex(batch[i] & 31);
		}
		out("\n");
	}
	return 0;
}

void start_c(long *sp)
{
	sys4(SYS_exit, run((int)sp[0], (char **)(sp + 1)), 0, 0, 0);
}

asm(".global _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call start_c\n"
	"	hlt\n");
