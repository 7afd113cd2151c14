// SPDX-License-Identifier: MIT
/* secret.c: scrubbing memory that held a secret (see secret.h). */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

void secret_scrub(void *p, size_t n)
{
	if (p)
		explicit_bzero(p, n);
}

void secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}
