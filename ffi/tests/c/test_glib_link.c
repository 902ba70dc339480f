/*
 * Links libkairos.a into a program that also uses glib, as QEMU does, and
 * drives a policy through a glib main-loop-style structure: a clash of
 * symbols between the two libraries would fail the link or this run.
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "kairos.h"

int main(void)
{
    GHashTable *decisions = g_hash_table_new(g_str_hash, g_str_equal);
    KairosConfig cfg;
    char err[128];
    kairos_config_default(&cfg);
    KairosPolicy *p = kairos_policy_new(&cfg, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "kairos_policy_new: %s\n", err);
        return 1;
    }
    for (uint64_t r = 1; r <= 20; r++) {
        KairosRound round = {r, r * 700, 20000, 80000000, r * 80000000, 125e6, 4096, 1ULL << 30};
        KairosAction a = kairos_policy_observe(p, &round);
        const char *name = kairos_action_name((uint32_t)a);
        gpointer count = g_hash_table_lookup(decisions, name);
        g_hash_table_insert(decisions, (gpointer)name, GINT_TO_POINTER(GPOINTER_TO_INT(count) + 1));
        if (a == KAIROS_ACTION_STOP_AND_COPY) {
            break;
        }
    }
    guint kinds = g_hash_table_size(decisions);
    g_hash_table_destroy(decisions);
    kairos_policy_free(p);
    if (kinds == 0) {
        fprintf(stderr, "no decisions recorded\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
