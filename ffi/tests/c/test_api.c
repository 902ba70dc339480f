/*
 * C tests of libkairos: a synthetic migration, garbage and NULLs, reset
 * mid-way, and a second thread reading the state while the first observes.
 * Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "kairos.h"

static int passed, failed;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            passed++;                                      \
        } else {                                           \
            failed++;                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fputc('\n', stderr);                           \
        }                                                  \
    } while (0)

/* A hot working set: pending plateaus near 90 MB at 125 MB/s, above QEMU's
 * 300 ms threshold (37.5 MB) and below the 1000 ms maximum. */
static KairosRound hot_round(uint64_t r)
{
    KairosRound round;
    memset(&round, 0, sizeof(round));
    round.round = r;
    round.elapsed_ms = r == 1 ? 0 : 2000 + (r - 2) * 720;
    round.pending_bytes = r == 1 ? (1ULL << 30) : 90000000ULL + (r % 3) * 1000000ULL;
    round.dirtied_pages = r == 1 ? 0 : round.pending_bytes / 4096;
    round.sent_bytes = r == 1 ? 0 : 300000000ULL + r * 90000000ULL;
    round.bandwidth_bytes_per_s = 125e6;
    round.page_size_bytes = 4096;
    round.ram_bytes = 1ULL << 30;
    return round;
}

static KairosPolicy *make(const char *name)
{
    KairosConfig cfg;
    char err[256] = "";
    kairos_config_default(&cfg);
    cfg.policy = name;
    KairosPolicy *p = kairos_policy_new(&cfg, err, sizeof(err));
    CHECK(p != NULL, "kairos_policy_new(%s): %s", name, err);
    return p;
}

static void test_version(void)
{
    CHECK(kairos_abi_version() == KAIROS_ABI_VERSION, "ABI version mismatch");
    CHECK(strlen(kairos_version()) > 0, "empty version");
    CHECK(strcmp(kairos_action_name(KAIROS_ACTION_STOP_AND_COPY), "stop-and-copy") == 0, "action name");
    CHECK(strcmp(kairos_action_name(99), "unknown") == 0, "unknown action name");
    CHECK(strcmp(kairos_reason_name(KAIROS_REASON_CONVERGENCE_POINT), "convergence-point") == 0, "reason name");
    CHECK(strcmp(kairos_reason_name(12345), "unknown") == 0, "unknown reason name");
    CHECK(strcmp(kairos_model_name(KAIROS_MODEL_ARIMA_ONS), "arima-ons") == 0, "model name");
    CHECK(strcmp(kairos_model_name(UINT32_MAX), "unknown") == 0, "unknown model name");
}

static void test_bad_config(void)
{
    KairosConfig cfg;
    char err[256] = "";
    kairos_config_default(&cfg);
    cfg.policy = "fastest";
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "unknown policy accepted");
    CHECK(strstr(err, "unknown policy 'fastest'") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.max_downtime_ms = 10;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "max below limit accepted");
    CHECK(strstr(err, "max_downtime_ms") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.downtime_limit_ms = NAN;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "NaN limit accepted");

    kairos_config_default(&cfg);
    cfg.downtime_weight = -1;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "negative weight accepted");
    CHECK(strstr(err, "downtime_weight") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.non_convergence_action = 7;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "bad non-convergence action accepted");
    CHECK(strstr(err, "non_convergence_action") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.history_rounds = 0;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "empty history accepted");
    CHECK(strstr(err, "history_rounds") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.escalation = 9;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "bad escalation accepted");
    CHECK(strstr(err, "escalation") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.max_throttle_pct = 100;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "throttle of 100 %% accepted");
    CHECK(strstr(err, "max_throttle_pct") != NULL, "message: %s", err);

    kairos_config_default(&cfg);
    cfg.non_convergence_action = KAIROS_NON_CONVERGENCE_ACTION_KEEP_GOING;
    KairosPolicy *keep = kairos_policy_new(&cfg, err, sizeof(err));
    CHECK(keep != NULL, "keep-going refused: %s", err);
    kairos_policy_free(keep);

    kairos_config_default(&cfg);
    cfg.policy = NULL;
    CHECK(kairos_policy_new(&cfg, err, sizeof(err)) == NULL, "NULL policy accepted");
    CHECK(kairos_policy_new(NULL, err, sizeof(err)) == NULL, "NULL config accepted");
    /* A tiny error buffer is truncated, still NUL-terminated. */
    char small[4] = "xxx";
    kairos_config_default(&cfg);
    cfg.policy = "nope";
    CHECK(kairos_policy_new(&cfg, small, sizeof(small)) == NULL && small[3] == '\0', "truncation");
    kairos_config_default(NULL);
}

/* Run the hot trace; return the round predictive stopped at (0 = never). */
static uint64_t run_hot(KairosPolicy *p, KairosReason *reason)
{
    for (uint64_t r = 1; r <= 60; r++) {
        KairosRound round = hot_round(r);
        KairosAction a = kairos_policy_observe(p, &round);
        if (a == KAIROS_ACTION_STOP_AND_COPY) {
            KairosState st;
            kairos_policy_state(p, &st);
            *reason = st.reason;
            return r;
        }
    }
    return 0;
}

static void test_trace_and_reset(void)
{
    KairosPolicy *qemu = make("qemu");
    KairosReason reason = KAIROS_REASON_NONE;
    CHECK(run_hot(qemu, &reason) == 0, "qemu should never stop on the hot plateau");
    kairos_policy_free(qemu);

    KairosPolicy *p = make("predictive");
    uint64_t first = run_hot(p, &reason);
    CHECK(first >= 2 && first <= 10, "predictive stopped at round %llu", (unsigned long long)first);
    CHECK(reason == KAIROS_REASON_CONVERGENCE_POINT, "reason %s", kairos_reason_name(reason));
    KairosState st;
    CHECK(kairos_policy_state(p, &st) == 0, "state");
    CHECK(st.forecast_pending_bytes > 0 && st.forecast_pending_lo_bytes <= st.forecast_pending_bytes &&
              st.forecast_pending_bytes <= st.forecast_pending_hi_bytes,
          "forecast interval %f [%f, %f]", st.forecast_pending_bytes, st.forecast_pending_lo_bytes,
          st.forecast_pending_hi_bytes);
    CHECK(st.model != KAIROS_MODEL_NONE, "no model named");
    CHECK(!isnan(st.stop_cost_ms) && st.stop_cost_ms > 0, "stop cost %f", st.stop_cost_ms);

    /* The history holds every round, oldest first, ending with the stop. */
    KairosRecord records[64];
    size_t n = kairos_policy_history(p, 0, records, 64);
    CHECK(n == first, "history holds %zu rounds, expected %llu", n, (unsigned long long)first);
    CHECK(n > 0 && records[0].round.round == 1 && records[n - 1].round.round == first &&
              records[n - 1].state.action == KAIROS_ACTION_STOP_AND_COPY,
          "history order");
    CHECK(kairos_policy_history(p, first - 1, records, 64) == 1, "history after a round");
    CHECK(kairos_policy_history(p, 0, records, 1) == 1, "history bounded by max");
    CHECK(kairos_policy_history(NULL, 0, records, 64) == 0 && kairos_policy_history(p, 0, NULL, 64) == 0,
          "history with NULL");

    /* Reset mid-way through a second run: the decisions repeat exactly. */
    kairos_policy_reset(p);
    CHECK(kairos_policy_state(p, &st) == 0 && st.rounds_observed == 0, "reset clears the state");
    CHECK(kairos_policy_history(p, 0, records, 64) == 0, "reset clears the history");
    for (uint64_t r = 1; r <= 2; r++) {
        KairosRound round = hot_round(r);
        kairos_policy_observe(p, &round);
    }
    kairos_policy_reset(p);
    CHECK(run_hot(p, &reason) == first, "after reset the policy stopped elsewhere");
    kairos_policy_free(p);
}

/* With throttle escalation and a maximum equal to the limit, nothing fits on
 * the hot plateau: the policy asks for a throttle, then stops once its
 * forecast (at the throttled pace) fits. */
static void test_throttle_escalation(void)
{
    KairosConfig cfg;
    char err[256] = "";
    kairos_config_default(&cfg);
    cfg.max_downtime_ms = cfg.downtime_limit_ms;
    cfg.escalation = KAIROS_ESCALATION_THROTTLE;
    KairosPolicy *p = kairos_policy_new(&cfg, err, sizeof(err));
    CHECK(p != NULL, "%s", err);
    uint32_t highest = 0;
    for (uint64_t r = 1; r <= 30; r++) {
        KairosRound round = hot_round(r);
        kairos_policy_observe(p, &round);
        KairosState st;
        kairos_policy_state(p, &st);
        if (st.throttle_pct > 0 && highest == 0) {
            /* The throttle starts as an escalation; later rounds re-size it. */
            CHECK(st.reason == KAIROS_REASON_THROTTLING, "reason %s", kairos_reason_name(st.reason));
        }
        if (st.throttle_pct > highest) {
            highest = st.throttle_pct;
        }
    }
    CHECK(highest > 0 && highest <= 99, "throttle asked for: %u %%", highest);
    kairos_policy_free(p);
}

/* The same escalation as a dirty-rate limit: the policy never asks for a CPU
 * throttle, and the limit it asks for is below the guest's forecast rate. */
static void test_dirty_limit_escalation(void)
{
    KairosConfig cfg;
    char err[256] = "";
    kairos_config_default(&cfg);
    cfg.max_downtime_ms = cfg.downtime_limit_ms;
    cfg.escalation = KAIROS_ESCALATION_DIRTY_LIMIT;
    KairosPolicy *p = kairos_policy_new(&cfg, err, sizeof(err));
    CHECK(p != NULL, "%s", err);
    int limited = 0;
    for (uint64_t r = 1; r <= 30; r++) {
        KairosRound round = hot_round(r);
        kairos_policy_observe(p, &round);
        KairosState st;
        kairos_policy_state(p, &st);
        CHECK(st.throttle_pct == 0, "CPU throttle %u %% with dirty-limit", st.throttle_pct);
        if (st.dirty_limit_bytes_per_s > 0) {
            CHECK(st.dirty_limit_bytes_per_s < st.forecast_dirty_rate_bytes_per_s,
                  "limit %.0f B/s, forecast rate %.0f B/s", st.dirty_limit_bytes_per_s,
                  st.forecast_dirty_rate_bytes_per_s);
            limited++;
        }
    }
    CHECK(limited > 0, "never asked for a dirty-rate limit");
    kairos_policy_free(p);
}

static void test_garbage(void)
{
    KairosPolicy *p = make("predictive");
    KairosRound round = hot_round(1);
    CHECK(kairos_policy_observe(NULL, &round) == KAIROS_ACTION_FALLBACK, "NULL handle");
    CHECK(kairos_policy_observe(p, NULL) == KAIROS_ACTION_FALLBACK, "NULL round");
    CHECK(kairos_policy_state(NULL, NULL) == -1, "NULL state");
    CHECK(kairos_policy_observe(p, &round) == KAIROS_ACTION_CONTINUE, "first round");

    double bad_bw[] = {NAN, INFINITY, -INFINITY, 0.0, -5.0};
    for (size_t i = 0; i < sizeof(bad_bw) / sizeof(bad_bw[0]); i++) {
        KairosRound g = hot_round(2);
        g.bandwidth_bytes_per_s = bad_bw[i];
        CHECK(kairos_policy_observe(p, &g) == KAIROS_ACTION_FALLBACK, "bandwidth %f", bad_bw[i]);
        KairosState st;
        kairos_policy_state(p, &st);
        CHECK(st.reason == KAIROS_REASON_BAD_INPUT_FALLBACK, "reason %s", kairos_reason_name(st.reason));
    }
    KairosRound back = hot_round(3);
    back.elapsed_ms = 0;
    back.round = 5;
    KairosRound ok = hot_round(4);
    kairos_policy_observe(p, &ok);
    CHECK(kairos_policy_observe(p, &back) == KAIROS_ACTION_FALLBACK, "time going backwards");
    KairosRound wrap = hot_round(6);
    wrap.sent_bytes = 1;
    CHECK(kairos_policy_observe(p, &wrap) == KAIROS_ACTION_FALLBACK, "sent counter wrapped");
    KairosRound huge = hot_round(7);
    huge.pending_bytes = UINT64_MAX;
    huge.dirtied_pages = UINT64_MAX;
    huge.page_size_bytes = 0;
    CHECK(kairos_policy_observe(p, &huge) == KAIROS_ACTION_FALLBACK, "all-ones counters");
    kairos_policy_free(p);
    kairos_policy_free(NULL);
    kairos_policy_reset(NULL);
}

struct reader {
    KairosPolicy *policy;
    volatile int stop;
    volatile long reads;
    int inconsistent;
};

static void *read_state(void *arg)
{
    struct reader *r = arg;
    uint64_t last = 0;
    while (!r->stop) {
        KairosState st;
        if (kairos_policy_state(r->policy, &st) == 0) {
            if (st.rounds_observed < last || st.model > KAIROS_MODEL_SEASONAL_NAIVE) {
                r->inconsistent++;
            }
            last = st.rounds_observed;
            r->reads++;
        }
        /* The history, read while the other thread writes it, is in order. */
        KairosRecord recent[16];
        size_t n = kairos_policy_history(r->policy, 0, recent, 16);
        for (size_t i = 1; i < n; i++) {
            if (recent[i].state.rounds_observed != recent[i - 1].state.rounds_observed + 1) {
                r->inconsistent++;
            }
        }
        /*
         * Let the writer in: where threads are serialised (valgrind), a
         * reader that retakes the policy's lock at once can starve it.
         */
        sched_yield();
    }
    return NULL;
}

static void test_concurrent_reader(void)
{
    KairosConfig cfg;
    char err[256];
    kairos_config_default(&cfg);
    cfg.max_rounds = 1000000;
    cfg.max_sent_ram_multiple = 1e9;
    cfg.max_elapsed_ms = UINT64_MAX;
    cfg.policy = "observe";
    cfg.history_rounds = 64;
    struct reader r = {kairos_policy_new(&cfg, err, sizeof(err)), 0, 0, 0};
    CHECK(r.policy != NULL, "%s", err);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_state, &r) == 0, "pthread_create");
    while (r.reads == 0) {
        sched_yield(); /* make sure the reader runs while we observe */
    }
    for (uint64_t i = 1; i <= 20000; i++) {
        KairosRound round = hot_round(i);
        kairos_policy_observe(r.policy, &round);
        if (i % 500 == 0) {
            sched_yield();
        }
    }
    r.stop = 1;
    pthread_join(t, NULL);
    CHECK(r.reads > 0, "reader never read");
    CHECK(r.inconsistent == 0, "%d inconsistent reads", r.inconsistent);
    KairosState st;
    kairos_policy_state(r.policy, &st);
    CHECK(st.rounds_observed == 20000, "rounds observed %llu", (unsigned long long)st.rounds_observed);
    /* The ring kept the last 64 rounds only. */
    KairosRecord last[100];
    size_t n = kairos_policy_history(r.policy, 0, last, 100);
    CHECK(n == 64 && last[0].state.rounds_observed == 20000 - 63 && last[63].state.rounds_observed == 20000,
          "ring holds %zu rounds from %llu", n, (unsigned long long)(n ? last[0].state.rounds_observed : 0));
    kairos_policy_free(r.policy);
}

int main(void)
{
    test_version();
    test_bad_config();
    test_trace_and_reset();
    test_throttle_escalation();
    test_dirty_limit_escalation();
    test_garbage();
    test_concurrent_reader();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
