/* Shim-internal helpers, not part of the bound API. */
#ifndef LCP_INTERNAL_H
#define LCP_INTERNAL_H

/* Runs fn(arg) on a helper thread that entered the named namespace (NULL/"" = ours;
 * an absolute path: that namespace file). */
int lcp_run_in_netns(const char *netns, int (*fn)(const void *), const void *arg);

#endif
