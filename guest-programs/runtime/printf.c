/* Tiny printf: %d %i %u %x %X %o %s %c %p %% with flags '-', '0', width, precision for %s,
 * length modifiers l (ignored, 32-bit) and ll (64-bit). stdout is buffered and flushed at
 * every '\n', when the buffer is full, and at exit: the sequence of write() calls is a pure
 * function of the program's output, so runs are deterministic. */
#include "runtime.h"

#define OUTBUF_SIZE 256

static char outbuf[OUTBUF_SIZE];
static size_t outlen;

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		long r = sys_write(fd, p, n);
		if (r <= 0)
			return;
		p += r;
		n -= (size_t)r;
	}
}

void fflush_stdout(void)
{
	if (outlen) {
		write_all(1, outbuf, outlen);
		outlen = 0;
	}
}

static void out_stdout(char c)
{
	outbuf[outlen++] = c;
	if (c == '\n' || outlen == OUTBUF_SIZE)
		fflush_stdout();
}

int putchar(int c)
{
	out_stdout((char)c);
	return (unsigned char)c;
}

int puts(const char *s)
{
	while (*s)
		out_stdout(*s++);
	out_stdout('\n');
	return 0;
}

void eputs(const char *s)
{
	write_all(2, s, strlen(s));
}

struct sink {
	char *buf;    /* NULL: stdout */
	size_t size;  /* capacity of buf including the terminating NUL */
	size_t count; /* characters produced so far */
};

static void emit(struct sink *s, char c)
{
	if (s->buf) {
		if (s->count + 1 < s->size)
			s->buf[s->count] = c;
	} else {
		out_stdout(c);
	}
	s->count++;
}

static void emit_padded(struct sink *s, const char *str, size_t len, int width, int left, char pad)
{
	int fill = width > (int)len ? width - (int)len : 0;
	if (!left && pad == '0' && len > 0 && str[0] == '-') {
		/* zero padding goes after the sign */
		emit(s, '-');
		str++;
		len--;
	}
	if (!left)
		while (fill-- > 0)
			emit(s, pad);
	while (len--)
		emit(s, *str++);
	if (left)
		while (fill-- > 0)
			emit(s, ' ');
}

/* Converts v to text in base; returns the length. buf must hold 24 bytes. */
static size_t utoa64(char *buf, uint64_t v, unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	size_t n = 0, i;
	if (v == 0)
		tmp[n++] = '0';
	if (v >> 32) {
		while (v) {
			tmp[n++] = digits[v % base];
			v /= base;
		}
	} else {
		/* 32-bit fast path: no libgcc call */
		uint32_t w = (uint32_t)v;
		while (w) {
			tmp[n++] = digits[w % base];
			w /= base;
		}
	}
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static int format(struct sink *s, const char *fmt, va_list ap)
{
	char num[26];
	for (; *fmt; fmt++) {
		int left = 0, width = 0, prec = -1, lng = 0;
		char pad = ' ';
		if (*fmt != '%') {
			emit(s, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			while (*fmt >= '0' && *fmt <= '9')
				prec = prec * 10 + (*fmt++ - '0');
		}
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng >= 2 ? va_arg(ap, int64_t) : (int64_t)va_arg(ap, int);
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			size_t n = 0;
			if (v < 0)
				num[n++] = '-';
			n += utoa64(num + n, mag, 10, 0);
			emit_padded(s, num, n, width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uint64_t v = lng >= 2 ? va_arg(ap, uint64_t) : (uint64_t)va_arg(ap, unsigned);
			unsigned base = *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16;
			size_t n = utoa64(num, v, base, *fmt == 'X');
			emit_padded(s, num, n, width, left, pad);
			break;
		}
		case 'p': {
			uintptr_t v = (uintptr_t)va_arg(ap, void *);
			size_t n;
			num[0] = '0';
			num[1] = 'x';
			n = 2 + utoa64(num + 2, v, 16, 0);
			emit_padded(s, num, n, width, left, ' ');
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			size_t n;
			if (!str)
				str = "(null)";
			n = strlen(str);
			if (prec >= 0 && (size_t)prec < n)
				n = (size_t)prec;
			emit_padded(s, str, n, width, left, ' ');
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			emit_padded(s, &c, 1, width, left, ' ');
			break;
		}
		case '%':
			emit(s, '%');
			break;
		case '\0':
			return (int)s->count;
		default:
			emit(s, '%');
			emit(s, *fmt);
			break;
		}
	}
	return (int)s->count;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = {0, 0, 0};
	return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	r = vprintf(fmt, ap);
	va_end(ap);
	return r;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	struct sink s = {buf, size, 0};
	va_list ap;
	int r;
	va_start(ap, fmt);
	r = format(&s, fmt, ap);
	va_end(ap);
	if (size)
		buf[s.count < size ? s.count : size - 1] = '\0';
	return r;
}
