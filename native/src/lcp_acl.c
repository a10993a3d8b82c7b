/* Classifier contexts (rte_acl): the field layout and the rule structs stay in C. The C# side
 * hands over rules as flat records of 32-bit words and classifies with rte_acl_classify,
 * bound directly, over keys it builds in the layout below. */
#include <errno.h>
#include <string.h>

#include <rte_acl.h>
#include <rte_errno.h>

#include "lcp_shim.h"

/* Key layouts (network byte order, as read from the packet):
 *   IPv4, 20 bytes: proto(0) | src(4) | dst(8) | sport(12) dport(14) | flags(16) 0(17) 0(18..19)
 *   IPv6, 44 bytes: proto(0) | src(4..19) | dst(20..35) | sport(36) dport(38) | flags(40) 0(41) 0(42..43)
 * rte_acl reads the first field as one byte and every later input group as 4 bytes, so the
 * TCP flags byte shares its group with two always-wildcard padding fields. ICMP type and code
 * travel in the port fields. */
enum { F_PROTO, F_SRC0 };

static int field_defs(int v6, struct rte_acl_field_def *d)
{
	int n = 0, in = 0;
	d[n++] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, in++, 0 };
	int words = v6 ? 4 : 1;
	for (int w = 0; w < words; w++, n++)
		d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)n, (uint8_t)in++, (uint32_t)(4 + 4 * w) };
	for (int w = 0; w < words; w++, n++)
		d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)n, (uint8_t)in++, (uint32_t)(4 + 4 * words + 4 * w) };
	uint32_t ports = 4 + 8 * (uint32_t)words;
	d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_RANGE, 2, (uint8_t)n, (uint8_t)in, ports };
	n++;
	d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_RANGE, 2, (uint8_t)n, (uint8_t)in++, ports + 2 };
	n++;
	d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_BITMASK, 1, (uint8_t)n, (uint8_t)in, ports + 4 };
	n++;
	d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_BITMASK, 1, (uint8_t)n, (uint8_t)in, ports + 5 };
	n++;
	d[n] = (struct rte_acl_field_def){ RTE_ACL_FIELD_TYPE_RANGE, 2, (uint8_t)n, (uint8_t)in, ports + 6 };
	n++;
	return n;
}

#define MAX_FIELDS 14
RTE_ACL_RULE_DEF(lcp_acl_rule, MAX_FIELDS);

static uint32_t prefix_bits(uint32_t len, int word)
{
	int bits = (int)len - 32 * word;
	return bits <= 0 ? 0 : bits >= 32 ? 32 : (uint32_t)bits;
}

uint32_t lcp_acl_key_size(int v6)
{
	return v6 ? 44 : 20;
}

struct rte_acl_ctx *lcp_acl_build(const char *name, int socket_id, int v6, const uint32_t *rules, uint32_t n, int *error)
{
	struct rte_acl_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int nf = field_defs(v6, cfg.defs);
	cfg.num_fields = (uint32_t)nf;
	cfg.num_categories = 1;
	struct rte_acl_param param = {
		.name = name, .socket_id = socket_id, .rule_size = RTE_ACL_RULE_SZ(nf), .max_rule_num = n ? n : 1,
	};
	struct rte_acl_ctx *ctx = rte_acl_create(&param);
	if (ctx == NULL) {
		*error = rte_errno ? rte_errno : ENOMEM;
		return NULL;
	}
	int words = v6 ? 4 : 1;
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *r = rules + (size_t)i * LCP_ACL_RULE_WORDS;
		struct lcp_acl_rule ar;
		memset(&ar, 0, sizeof(ar));
		ar.data.userdata = r[0];
		ar.data.priority = (int32_t)r[1];
		ar.data.category_mask = 1;
		int f = 0;
		ar.field[f].value.u8 = (uint8_t)(r[2] & 0xff);
		ar.field[f++].mask_range.u8 = (uint8_t)((r[2] >> 8) & 0xff);
		for (int w = 0; w < words; w++, f++) {
			ar.field[f].value.u32 = r[7 + w];
			ar.field[f].mask_range.u32 = prefix_bits(r[5], w);
		}
		for (int w = 0; w < words; w++, f++) {
			ar.field[f].value.u32 = r[11 + w];
			ar.field[f].mask_range.u32 = prefix_bits(r[6], w);
		}
		ar.field[f].value.u16 = (uint16_t)(r[3] & 0xffff);
		ar.field[f++].mask_range.u16 = (uint16_t)(r[3] >> 16);
		ar.field[f].value.u16 = (uint16_t)(r[4] & 0xffff);
		ar.field[f++].mask_range.u16 = (uint16_t)(r[4] >> 16);
		ar.field[f].value.u8 = (uint8_t)((r[2] >> 16) & 0xff);
		ar.field[f++].mask_range.u8 = (uint8_t)(r[2] >> 24);
		ar.field[f].value.u8 = 0;
		ar.field[f++].mask_range.u8 = 0;
		ar.field[f].value.u16 = 0;
		ar.field[f++].mask_range.u16 = 0xffff;
		int rc = rte_acl_add_rules(ctx, (const struct rte_acl_rule *)&ar, 1);
		if (rc != 0) {
			*error = -rc;
			rte_acl_free(ctx);
			return NULL;
		}
	}
	int rc = rte_acl_build(ctx, &cfg);
	if (rc != 0) {
		*error = -rc;
		rte_acl_free(ctx);
		return NULL;
	}
	*error = 0;
	return ctx;
}
