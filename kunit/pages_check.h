/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A check the suites share: the core's own page arrays hold the balloon's
 * pages of order 1 and above and its kept 4 KiB pages, and nothing else
 * once a cycle is over (no slot reserved for a page that never joined).
 */
#ifndef _BALLOON_KUNIT_PAGES_CHECK_H
#define _BALLOON_KUNIT_PAGES_CHECK_H

#include <kunit/test.h>
#include <linux/xarray.h>

#include "../core/internal.h"

static inline void expect_own_arrays(struct kunit *test,
				     struct balloon_core_dev *bdev)
{
	unsigned int order;

	for (order = 0; order <= BALLOON_CORE_MAX_ORDER; order++) {
		XA_STATE(xas, &bdev->own[order], 0);
		unsigned long entries = 0, marked = 0;
		void *entry;

		/* Reserved slots too: the plain iterators skip them. */
		xas_lock(&xas);
		xas_for_each(&xas, entry, ULONG_MAX) {
			entries++;
			marked += xas_get_mark(&xas, BALLOON_CORE_OWN_READY) ||
				  xas_get_mark(&xas, BALLOON_CORE_OWN_KEPT);
		}
		xas_unlock(&xas);

		KUNIT_EXPECT_EQ_MSG(test, entries, marked, "order %u", order);
		if (order)
			KUNIT_EXPECT_EQ_MSG(test, marked,
					    READ_ONCE(bdev->nr_pages[order]),
					    "order %u", order);
		else
			KUNIT_EXPECT_LE(test, marked,
					READ_ONCE(bdev->nr_pages[0]));
	}
}

#endif /* _BALLOON_KUNIT_PAGES_CHECK_H */
