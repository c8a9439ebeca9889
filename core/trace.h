/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of balloon_core: what the host asked for and what the
 * balloon did about it, batch by batch.  They live under
 * events/balloon_core/ in tracefs, for trace-cmd, perf and bpftrace.
 *
 * Sizes and targets are in 4 KiB units, like everything on the seam.
 * The instance name is copied into a fixed array rather than a __string,
 * whose helpers changed between 6.1 and 6.12.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM balloon_core

#if !defined(_BALLOON_CORE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _BALLOON_CORE_TRACE_H

#include <linux/string.h>
#include <linux/tracepoint.h>

#include <balloon/core.h>

#define BALLOON_CORE_TRACE_NAME	sizeof(((struct balloon_core_dev *)0)->name)

TRACE_EVENT(balloon_core_target,
	    TP_PROTO(struct balloon_core_dev *bdev, u64 host, u64 target),
	    TP_ARGS(bdev, host, target),
	    TP_STRUCT__entry(__array(char, name, BALLOON_CORE_TRACE_NAME)
			     __field(u64, host)
			     __field(u64, target)
			     __field(u64, size)),
	    TP_fast_assign(strscpy(__entry->name, bdev->name,
				   BALLOON_CORE_TRACE_NAME);
			   __entry->host = host;
			   __entry->target = target;
			   __entry->size = bdev->size;),
	    TP_printk("%s host=%llu target=%llu size=%llu", __entry->name,
		      __entry->host, __entry->target, __entry->size)
);

DECLARE_EVENT_CLASS(balloon_core_batch_class,
		    TP_PROTO(struct balloon_core_dev *bdev, unsigned int order,
			     unsigned int count, unsigned int done, int ret),
		    TP_ARGS(bdev, order, count, done, ret),
		    TP_STRUCT__entry(__array(char, name, BALLOON_CORE_TRACE_NAME)
				     __field(unsigned int, order)
				     __field(unsigned int, count)
				     __field(unsigned int, done)
				     __field(int, ret)
				     __field(u64, size)),
		    TP_fast_assign(strscpy(__entry->name, bdev->name,
					   BALLOON_CORE_TRACE_NAME);
				   __entry->order = order;
				   __entry->count = count;
				   __entry->done = done;
				   __entry->ret = ret;
				   __entry->size = bdev->size;),
		    TP_printk("%s order=%u count=%u done=%u ret=%d size=%llu",
			      __entry->name, __entry->order, __entry->count,
			      __entry->done, __entry->ret, __entry->size)
);

/* A batch handed to @inflate: @done of @count pages joined the balloon. */
DEFINE_EVENT(balloon_core_batch_class, balloon_core_inflate,
	     TP_PROTO(struct balloon_core_dev *bdev, unsigned int order,
		      unsigned int count, unsigned int done, int ret),
	     TP_ARGS(bdev, order, count, done, ret)
);

/* A batch handed to @deflate: @done of @count pages left the balloon. */
DEFINE_EVENT(balloon_core_batch_class, balloon_core_deflate,
	     TP_PROTO(struct balloon_core_dev *bdev, unsigned int order,
		      unsigned int count, unsigned int done, int ret),
	     TP_ARGS(bdev, order, count, done, ret)
);

/* One page the host refused, with the errno the transport gave. */
TRACE_EVENT(balloon_core_refused,
	    TP_PROTO(struct balloon_core_dev *bdev, unsigned long pfn,
		     unsigned int order, int status),
	    TP_ARGS(bdev, pfn, order, status),
	    TP_STRUCT__entry(__array(char, name, BALLOON_CORE_TRACE_NAME)
			     __field(unsigned long, pfn)
			     __field(unsigned int, order)
			     __field(int, status)),
	    TP_fast_assign(strscpy(__entry->name, bdev->name,
				   BALLOON_CORE_TRACE_NAME);
			   __entry->pfn = pfn;
			   __entry->order = order;
			   __entry->status = status;),
	    TP_printk("%s pfn=%#lx order=%u status=%d", __entry->name,
		      __entry->pfn, __entry->order, __entry->status)
);

/* A reset: every page dropped without telling the host. */
TRACE_EVENT(balloon_core_reset,
	    TP_PROTO(struct balloon_core_dev *bdev),
	    TP_ARGS(bdev),
	    TP_STRUCT__entry(__array(char, name, BALLOON_CORE_TRACE_NAME)
			     __field(u64, dropped)),
	    TP_fast_assign(strscpy(__entry->name, bdev->name,
				   BALLOON_CORE_TRACE_NAME);
			   __entry->dropped = bdev->size;),
	    TP_printk("%s dropped=%llu", __entry->name, __entry->dropped)
);

/* A deflate under memory pressure, before the OOM killer. */
TRACE_EVENT(balloon_core_pressure,
	    TP_PROTO(struct balloon_core_dev *bdev, u64 freed),
	    TP_ARGS(bdev, freed),
	    TP_STRUCT__entry(__array(char, name, BALLOON_CORE_TRACE_NAME)
			     __field(u64, freed)
			     __field(u64, size)),
	    TP_fast_assign(strscpy(__entry->name, bdev->name,
				   BALLOON_CORE_TRACE_NAME);
			   __entry->freed = freed;
			   __entry->size = bdev->size;),
	    TP_printk("%s freed=%llu size=%llu", __entry->name,
		      __entry->freed, __entry->size)
);

/* The guest was found reclaiming hard: @refaults pages in @ms. */
TRACE_EVENT(balloon_core_reclaiming,
	    TP_PROTO(struct balloon_core_dev *bdev, unsigned long refaults,
		     unsigned int ms),
	    TP_ARGS(bdev, refaults, ms),
	    TP_STRUCT__entry(__array(char, name, BALLOON_CORE_TRACE_NAME)
			     __field(unsigned long, refaults)
			     __field(unsigned int, ms)
			     __field(u64, size)),
	    TP_fast_assign(strscpy(__entry->name, bdev->name,
				   BALLOON_CORE_TRACE_NAME);
			   __entry->refaults = refaults;
			   __entry->ms = ms;
			   __entry->size = bdev->size;),
	    TP_printk("%s refaults=%lu ms=%u size=%llu", __entry->name,
		      __entry->refaults, __entry->ms, __entry->size)
);

#endif /* _BALLOON_CORE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
