/* test_scheduler.c — the gang scheduler's C ABI under valgrind: options and spec builders with
 * their errors, a two-node cluster, gangs placed whole on distinct GPUs, a high-priority gang
 * preempting two preemptible jobs (PREEMPT before its START), TEST_ONLY and WILL_RUN, job states
 * and stats, the Prometheus series, and a scheduler freed and restored from its journal with no
 * job lost, which then carries on scheduling. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <zenith.h>

#include "check.h"

static void expect_error(zenith_status status, zenith_error *err, zenith_status code,
                         const char *needle) {
    CHECK_EQ_INT(status, code);
    CHECK_EQ_INT(zenith_error_code(err), code);
    CHECK_STR_CONTAINS(zenith_error_message(err), needle);
    zenith_error_free(err);
}

#define EXPECT_ERROR(call, code, needle)              \
    do {                                              \
        err = NULL;                                   \
        zenith_status status_ = (call);               \
        expect_error(status_, err, (code), (needle)); \
    } while (0)

/* Fails the test with the error's message when a call that must succeed does not. */
#define OK(call)                                                                         \
    do {                                                                                 \
        zenith_error *ok_err_ = NULL;                                                    \
        zenith_status ok_status_ = (call);                                               \
        check_count++;                                                                   \
        if (ok_status_ != ZENITH_OK) {                                                   \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #call,    \
                    (int)ok_status_, zenith_error_message(ok_err_));                     \
        }                                                                                \
        zenith_error_free(ok_err_);                                                      \
    } while (0)
/* The calls inside OK() report into `&ok_err_`. */
#define E (&ok_err_)

static const char *journal = "build/tests/c/scheduler.journal";

static zenith_scheduler_options *options(void) {
    zenith_scheduler_options *opts = NULL;
    OK(zenith_scheduler_options_new(&opts, E));
    OK(zenith_scheduler_options_set_policy(opts, "zenith", E));
    OK(zenith_scheduler_options_set_journal(opts, journal, 0, E));
    return opts;
}

static void add_node(zenith_scheduler *s, const char *name, uint64_t now, uint32_t expect_id) {
    zenith_node_spec *node = NULL;
    OK(zenith_node_spec_new(name, 64000, 512 * 1024, &node, E));
    OK(zenith_node_spec_add_gpus(node, 8, "H100", 81920, E));
    const uint32_t island0[] = {0, 1, 2, 3}, island1[] = {4, 5, 6, 7};
    OK(zenith_node_spec_add_nvlink_island(node, island0, 4, E));
    OK(zenith_node_spec_add_nvlink_island(node, island1, 4, E));
    OK(zenith_node_spec_set_label(node, "rack", "r0", E));
    uint32_t id = 99;
    OK(zenith_scheduler_node_add(s, node, now, &id, E));
    CHECK_EQ_INT(id, expect_id);
    zenith_node_spec_free(node);
}

/* A job of `gang` members with `gpus` GPUs each. */
static zenith_job_spec *job(uint64_t id, uint32_t gang, uint32_t gpus, int32_t priority,
                            int preemptible) {
    zenith_job_spec *spec = NULL;
    OK(zenith_job_spec_new(id, "train", &spec, E));
    OK(zenith_job_spec_set_user(spec, "alice", E));
    OK(zenith_job_spec_set_queue(spec, "research", E));
    OK(zenith_job_spec_set_gpus(spec, gpus, E));
    OK(zenith_job_spec_set_cpus(spec, 4000, E));
    OK(zenith_job_spec_set_memory(spec, 16384, E));
    OK(zenith_job_spec_set_gang(spec, gang, ZENITH_LOCALITY_ANY, E));
    OK(zenith_job_spec_set_priority(spec, priority, preemptible, E));
    OK(zenith_job_spec_set_command(spec, "/usr/bin/python3", E));
    OK(zenith_job_spec_add_arg(spec, "train.py", E));
    OK(zenith_job_spec_add_env(spec, "NCCL_DEBUG", "INFO", E));
    return spec;
}

static void submit(zenith_scheduler *s, zenith_job_spec *spec, uint64_t now) {
    OK(zenith_scheduler_submit(s, spec, now, E));
    zenith_job_spec_free(spec);
}

static zenith_job_state state_of(zenith_scheduler *s, uint64_t id) {
    zenith_job_state state = -1;
    OK(zenith_scheduler_job_state(s, id, &state, E));
    return state;
}

/* Checks a START: `members` members with `gpus` whole GPUs each, no GPU of a node twice. */
static void check_start(zenith_scheduler_decisions *d, size_t i, uint64_t job_id, size_t members,
                        size_t gpus) {
    zenith_scheduler_decision dec = {.struct_size = sizeof dec};
    OK(zenith_scheduler_decisions_get(d, i, &dec, E));
    CHECK_EQ_INT(dec.kind, ZENITH_DECISION_START);
    CHECK_EQ_INT(dec.job, job_id);
    CHECK_EQ_INT(dec.members, members);
    uint8_t used[2][8] = {{0}};
    for (size_t m = 0; m < dec.members; m++) {
        zenith_scheduler_member member = {.struct_size = sizeof member};
        OK(zenith_scheduler_decisions_member(d, i, m, &member, E));
        CHECK_EQ_INT(member.gpus, gpus);
        CHECK(member.node_id < 2);
        CHECK(strcmp(member.node_name, member.node_id == 0 ? "n0" : "n1") == 0);
        for (size_t g = 0; g < member.gpus; g++) {
            uint32_t index = 99, milli = 0;
            OK(zenith_scheduler_decisions_member_gpu(d, i, m, g, &index, &milli, E));
            CHECK(index < 8);
            CHECK_EQ_INT(milli, 1000);
            if (index < 8 && member.node_id < 2) {
                CHECK(!used[member.node_id][index]);
                used[member.node_id][index] = 1;
            }
        }
    }
}

static void test_argument_errors(void) {
    zenith_error *err = NULL;
    zenith_scheduler_options *opts = NULL;
    CHECK_EQ_INT(zenith_scheduler_options_new(NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    OK(zenith_scheduler_options_new(&opts, E));
    EXPECT_ERROR(zenith_scheduler_options_set_policy(opts, "lottery", &err),
                 ZENITH_ERR_INVALID_ARGUMENT, "unknown policy");
    EXPECT_ERROR(zenith_scheduler_options_set_policy(opts, NULL, &err), ZENITH_ERR_NULL_ARGUMENT,
                 "name");
    EXPECT_ERROR(zenith_scheduler_options_set_node_timeouts(opts, 0, 10, &err),
                 ZENITH_ERR_INVALID_ARGUMENT, "node timeouts");
    zenith_scheduler *s = NULL;
    OK(zenith_scheduler_new(opts, &s, E)); /* no journal: in memory */
    zenith_scheduler_options_free(opts);
    EXPECT_ERROR(zenith_scheduler_compact_journal(s, &err), ZENITH_ERR_INVALID_STATE,
                 "no journal file");

    zenith_job_spec *spec = NULL;
    EXPECT_ERROR(zenith_job_spec_new(1, "\xff", &spec, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "job.name");
    CHECK(spec == NULL);
    OK(zenith_job_spec_new(1, "j", &spec, E));
    EXPECT_ERROR(zenith_job_spec_set_gang(spec, 2, 42, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "unknown locality 42");
    EXPECT_ERROR(zenith_job_spec_add_arg(spec, "x", &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "set the command");
    /* Asking for nothing is refused at submit, naming the field. */
    EXPECT_ERROR(zenith_scheduler_submit(s, spec, 0, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "job.member");
    OK(zenith_job_spec_set_gpu_share(spec, 250, E));
    OK(zenith_job_spec_set_command(spec, "/bin/true", E));
    OK(zenith_job_spec_add_env(spec, "1BAD", "x", E));
    EXPECT_ERROR(zenith_job_spec_validate(spec, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "command.env[0].name");
    EXPECT_ERROR(zenith_scheduler_submit(s, spec, 0, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "command.env[0].name");
    zenith_job_spec_free(spec);

    /* A queue with a quota of 2 GPUs, in a cohort. */
    zenith_queue_spec *queue = NULL;
    OK(zenith_queue_spec_new("small", &queue, E));
    EXPECT_ERROR(zenith_queue_spec_set_limit(queue, 9, 1, 1, 1, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "unknown queue limit 9");
    OK(zenith_queue_spec_set_limit(queue, ZENITH_QUEUE_NOMINAL, 2000, 64000, 1024, E));
    OK(zenith_queue_spec_set_cohort(queue, "lab", 2, E));
    OK(zenith_scheduler_set_queue(s, queue, E));
    OK(zenith_queue_spec_set_cohort(queue, NULL, 0, E)); /* weight 0 is refused when set */
    EXPECT_ERROR(zenith_scheduler_set_queue(s, queue, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "weight");
    zenith_queue_spec_free(queue);
    zenith_queue_spec_free(NULL);

    EXPECT_ERROR(zenith_scheduler_cancel(s, 77, 0, &err), ZENITH_ERR_NOT_FOUND, "unknown job 77");
    EXPECT_ERROR(zenith_scheduler_node_heartbeat(s, "ghost", 0, &err), ZENITH_ERR_NOT_FOUND,
                 "ghost");
    EXPECT_ERROR(zenith_scheduler_submit(NULL, NULL, 0, &err), ZENITH_ERR_NULL_ARGUMENT, "spec");
    zenith_scheduler_decisions *d = NULL;
    OK(zenith_scheduler_schedule(s, 10, &d, E));
    CHECK_EQ_INT(zenith_scheduler_decisions_len(d), 0);
    zenith_scheduler_decision dec = {.struct_size = sizeof dec};
    EXPECT_ERROR(zenith_scheduler_decisions_get(d, 0, &dec, &err), ZENITH_ERR_INVALID_ARGUMENT,
                 "out of range");
    zenith_scheduler_decisions_free(d);
    d = NULL;
    EXPECT_ERROR(zenith_scheduler_schedule(s, 5, &d, &err), ZENITH_ERR_INVALID_STATE,
                 "clock went backwards");
    CHECK(d == NULL);
    CHECK_EQ_INT(zenith_scheduler_decisions_len(NULL), 0);
    zenith_scheduler_decisions_free(NULL);
    zenith_scheduler_free(NULL);
    zenith_job_spec_free(NULL);
    zenith_node_spec_free(NULL);
    zenith_scheduler_options_free(NULL);
    CHECK_STR_CONTAINS(zenith_status_str(ZENITH_ERR_ALREADY_EXISTS), "already exists");
    zenith_scheduler_free(s);
}

static void test_cluster_and_restore(void) {
    zenith_error *err = NULL;
    unlink(journal);
    zenith_scheduler_options *opts = options();
    zenith_scheduler *s = NULL;
    OK(zenith_scheduler_new(opts, &s, E));
    add_node(s, "n0", 0, 0);
    add_node(s, "n1", 0, 1);
    zenith_node_spec *dup = NULL;
    OK(zenith_node_spec_new("n0", 1000, 1024, &dup, E));
    EXPECT_ERROR(zenith_scheduler_node_add(s, dup, 0, NULL, &err), ZENITH_ERR_ALREADY_EXISTS,
                 "n0");
    zenith_node_spec_free(dup);

    /* A gang of 2 x 4 GPUs and a job of 8 GPUs, both preemptible: both start. */
    submit(s, job(1, 2, 4, 0, 1), 100);
    submit(s, job(2, 1, 8, 0, 1), 100);
    zenith_job_spec *again = job(2, 1, 1, 0, 0);
    EXPECT_ERROR(zenith_scheduler_submit(s, again, 100, &err), ZENITH_ERR_ALREADY_EXISTS,
                 "job 2 already exists");
    zenith_job_spec_free(again);
    CHECK_EQ_INT(state_of(s, 1), ZENITH_JOB_PENDING);

    zenith_scheduler_decisions *d = NULL;
    OK(zenith_scheduler_schedule(s, 1000, &d, E));
    CHECK_EQ_INT(zenith_scheduler_decisions_len(d), 2);
    for (size_t i = 0; i < zenith_scheduler_decisions_len(d); i++) {
        zenith_scheduler_decision dec = {.struct_size = sizeof dec};
        OK(zenith_scheduler_decisions_get(d, i, &dec, E));
        if (dec.job == 1) {
            check_start(d, i, 1, 2, 4);
        } else {
            check_start(d, i, 2, 1, 8);
        }
    }
    EXPECT_ERROR(zenith_scheduler_decisions_member(d, 0, 5, &(zenith_scheduler_member){
                                                               .struct_size = sizeof(
                                                                   zenith_scheduler_member)},
                                                   &err),
                 ZENITH_ERR_INVALID_ARGUMENT, "member index 5");
    zenith_scheduler_decisions_free(d);
    CHECK_EQ_INT(state_of(s, 1), ZENITH_JOB_SCHEDULED);
    OK(zenith_scheduler_job_started(s, 1, 1100, E));
    OK(zenith_scheduler_job_started(s, 2, 1100, E));
    CHECK_EQ_INT(state_of(s, 2), ZENITH_JOB_RUNNING);

    /* TEST_ONLY: one more GPU does not fit now; WILL_RUN: never (no time limits). */
    zenith_job_spec *probe = job(9, 1, 1, 0, 0);
    OK(zenith_scheduler_test_only(s, probe, &d, E));
    CHECK_EQ_INT(zenith_scheduler_decisions_len(d), 0);
    zenith_scheduler_decisions_free(d);
    uint64_t at = 0;
    CHECK_EQ_INT(zenith_scheduler_will_run(s, probe, &at, NULL), ZENITH_DONE);
    zenith_job_spec_free(probe);

    /* A high-priority gang of 2 x 8 GPUs preempts both: PREEMPTs first, then its START. */
    zenith_job_spec *big = job(3, 2, 8, 5, 0);
    OK(zenith_job_spec_set_max_runtime(big, 3600000, E));
    OK(zenith_job_spec_set_gang(big, 2, ZENITH_LOCALITY_SPREAD, E));
    submit(s, big, 2000);
    OK(zenith_scheduler_schedule(s, 2000, &d, E));
    CHECK_EQ_INT(zenith_scheduler_decisions_len(d), 3);
    int preempted = 0;
    for (size_t i = 0; i < 2; i++) {
        zenith_scheduler_decision dec = {.struct_size = sizeof dec};
        OK(zenith_scheduler_decisions_get(d, i, &dec, E));
        CHECK_EQ_INT(dec.kind, ZENITH_DECISION_PREEMPT);
        CHECK_EQ_INT(dec.by, 3);
        preempted |= 1 << dec.job;
    }
    CHECK_EQ_INT(preempted, (1 << 1) | (1 << 2));
    check_start(d, 2, 3, 2, 8);
    zenith_scheduler_decisions_free(d);
    OK(zenith_scheduler_job_started(s, 3, 2100, E));
    CHECK_EQ_INT(state_of(s, 1), ZENITH_JOB_SUSPENDED);

    /* WILL_RUN for job 1 now: when job 3's time limit (counted from its start) ends. */
    CHECK_EQ_INT(zenith_scheduler_will_run_job(s, 1, &at, NULL), ZENITH_OK);
    CHECK_EQ_INT(at, 2100 + 3600000);

    zenith_scheduler_stats stats = {.struct_size = sizeof stats};
    OK(zenith_scheduler_get_stats(s, &stats, E));
    CHECK_EQ_INT(stats.allocation_success_total, 3);
    CHECK_EQ_INT(stats.preemptions_total, 2);
    CHECK_EQ_INT(stats.jobs[ZENITH_JOB_RUNNING], 1);
    CHECK_EQ_INT(stats.jobs[ZENITH_JOB_SUSPENDED], 2);
    CHECK_EQ_INT(stats.gpus_total, 16);
    CHECK_EQ_INT(stats.restored_records, 0);

    /* The series are in the process's Prometheus text. */
    size_t len = 0;
    CHECK_EQ_INT(zenith_telemetry_prometheus(NULL, 0, &len, NULL), ZENITH_ERR_BUFFER_TOO_SMALL);
    char *text = malloc(len + 4096);
    OK(zenith_telemetry_prometheus(text, len + 4096, &len, E));
    CHECK_STR_CONTAINS(text, "zenith_scheduler_jobs_running 1\n");
    CHECK_STR_CONTAINS(text, "zenith_scheduler_allocation_success_total 3\n");
    CHECK_STR_CONTAINS(text, "zenith_scheduler_decision_latency_seconds_count");
    free(text);

    /* Cancelling a finished job is a state error. */
    OK(zenith_scheduler_cancel(s, 2, 2200, E));
    EXPECT_ERROR(zenith_scheduler_cancel(s, 2, 2300, &err), ZENITH_ERR_INVALID_STATE,
                 "already finished");

    /* Compaction: the journal restarts from a snapshot; nothing changes. */
    OK(zenith_scheduler_get_stats(s, &stats, E));
    uint64_t started_before = stats.allocation_success_total;
    OK(zenith_scheduler_compact_journal(s, E));
    OK(zenith_scheduler_get_stats(s, &stats, E));
    CHECK_EQ_INT(stats.allocation_success_total, started_before);
    CHECK_EQ_INT(stats.now_ms, 2200);
    OK(zenith_scheduler_job_progress(s, 3, 2200, E)); /* journaled after the snapshot */
    EXPECT_ERROR(zenith_scheduler_compact_journal(NULL, &err), ZENITH_ERR_NULL_ARGUMENT,
                 "scheduler");

    /* "Crash": free the scheduler, restore it from the journal. */
    zenith_scheduler_free(s);
    s = NULL;
    OK(zenith_scheduler_new(opts, &s, E));
    zenith_scheduler_options_free(opts);
    OK(zenith_scheduler_get_stats(s, &stats, E));
    CHECK(stats.restored_records > 10);
    CHECK_EQ_INT(stats.now_ms, 2200); /* the failed cancel at 2300 changed nothing */
    CHECK_EQ_INT(stats.allocation_success_total, 3);
    CHECK_EQ_INT(state_of(s, 1), ZENITH_JOB_SUSPENDED);
    CHECK_EQ_INT(state_of(s, 2), ZENITH_JOB_CANCELLED);
    CHECK_EQ_INT(state_of(s, 3), ZENITH_JOB_RUNNING);

    /* It carries on: job 3 completes, job 1 is requeued and starts again. */
    OK(zenith_scheduler_job_completed(s, 3, 5000, E));
    OK(zenith_scheduler_schedule(s, 5000, &d, E));
    int restarted = 0;
    for (size_t i = 0; i < zenith_scheduler_decisions_len(d); i++) {
        zenith_scheduler_decision dec = {.struct_size = sizeof dec};
        OK(zenith_scheduler_decisions_get(d, i, &dec, E));
        if (dec.kind == ZENITH_DECISION_REQUEUE) {
            CHECK_EQ_INT(dec.job, 1);
            CHECK_EQ_INT(dec.reason, ZENITH_REASON_PREEMPTED);
        } else if (dec.kind == ZENITH_DECISION_START) {
            check_start(d, i, 1, 2, 4);
            restarted = 1;
        }
    }
    CHECK(restarted);
    zenith_scheduler_decisions_free(d);
    CHECK_EQ_INT(state_of(s, 1), ZENITH_JOB_SCHEDULED);
    CHECK_EQ_INT(state_of(s, 3), ZENITH_JOB_COMPLETED);
    zenith_scheduler_free(s);
    unlink(journal);
    char snapshot[256];
    snprintf(snapshot, sizeof snapshot, "%s.snapshot", journal);
    unlink(snapshot);
}

int main(void) {
    test_argument_errors();
    test_cluster_and_restore();
    return check_summary("test_scheduler");
}
