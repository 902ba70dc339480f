/*
 * Prints, as JSON, the names libkairos gives QEMU: every action and reason
 * name (kairos_action_name()/kairos_reason_name(), the strings QEMU maps to
 * its QAPI enums), and whether the library accepts each policy name given
 * on the command line (QEMU hands MigrationConvergencePolicy_str() to
 * kairos_policy_new()). Built and run by test_qapi_names.py.
 */
#include <stdio.h>
#include <string.h>
#include <kairos.h>

static void print_names(const char *set, const char *(*name)(uint32_t))
{
    uint32_t v;

    printf("\"%s\": [", set);
    for (v = 0; strcmp(name(v), "unknown") != 0; v++) {
        printf("%s\"%s\"", v ? ", " : "", name(v));
    }
    printf("]");
}

int main(int argc, char **argv)
{
    KairosConfig config;
    char error[256];
    int i;

    printf("{");
    print_names("action", kairos_action_name);
    printf(", ");
    print_names("reason", kairos_reason_name);
    printf(", \"policy_accepted\": {");
    for (i = 1; i < argc; i++) {
        struct KairosPolicy *policy;

        kairos_config_default(&config);
        config.policy = argv[i];
        policy = kairos_policy_new(&config, error, sizeof(error));
        printf("%s\"%s\": %s", i > 1 ? ", " : "", argv[i],
               policy ? "true" : "false");
        kairos_policy_free(policy);
    }
    printf("}}\n");
    return 0;
}
