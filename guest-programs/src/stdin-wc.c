/* stdin-wc: reads stdin to EOF in odd-sized chunks (read(0, buf, 97)), counts bytes, lines and
 * words, computes an FNV-1a hash, and echoes each line back upper-cased with its number.
 * expected/stdin-wc.stdin is the input. */
#include "runtime.h"

static char line[256];
static uint32_t line_len, line_no;

static void end_line(void)
{
	line[line_len] = 0;
	printf("%3u: %s\n", ++line_no, line);
	line_len = 0;
}

int main(void)
{
	char buf[97];
	uint32_t bytes = 0, lines = 0, words = 0, reads = 0, h = 2166136261u;
	int in_word = 0;
	for (;;) {
		long n = sys_read(0, buf, sizeof buf), i;
		if (n < 0) {
			printf("read error %ld\n", n);
			return 1;
		}
		if (n == 0)
			break;
		reads++;
		for (i = 0; i < n; i++) {
			char c = buf[i];
			bytes++;
			h = (h ^ (uint8_t)c) * 16777619u;
			if (c == '\n') {
				lines++;
				end_line();
			} else if (line_len < sizeof line - 1) {
				line[line_len++] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
			}
			if (c == ' ' || c == '\n' || c == '\t') {
				in_word = 0;
			} else if (!in_word) {
				in_word = 1;
				words++;
			}
		}
	}
	if (line_len)
		end_line();
	printf("bytes %u, lines %u, words %u, fnv1a %08x, reads >= %u: %s\n", bytes, lines, words, h,
	       (bytes + 96) / 97, reads >= (bytes + 96) / 97 ? "yes" : "no");
	return 0;
}
