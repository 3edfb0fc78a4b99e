// test_scheduler.cpp — the gang scheduler through zenith.hpp: RAII specs and scheduler, a gang
// placed whole, preemption, TEST_ONLY and WILL_RUN, errors as zenith::Error with their codes,
// and a scheduler restored from its journal.
#include "common.hpp"

#include <cstdio>
#include <set>
#include <string>
#include <utility>

namespace {

zenith::NodeSpec node(const std::string& name) {
    return std::move(zenith::NodeSpec(name, 64000, 512 * 1024)
                         .gpus(8, "H100", 81920)
                         .island({0, 1, 2, 3})
                         .island({4, 5, 6, 7})
                         .label("rack", "r0"));
}

zenith::JobSpec job(std::uint64_t id, std::uint32_t gang, std::uint32_t gpus) {
    return std::move(zenith::JobSpec(id, "train").user("alice").gpus(gpus).gang(gang));
}

zenith_status code_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const zenith::Error& e) {
        return e.code();
    }
    return ZENITH_OK;
}

}  // namespace

TEST(Scheduler, PlacesGangsWholeAndPreempts) {
    zenith::Scheduler s;
    EXPECT_EQ(s.add_node(node("n0"), 0), 0u);
    EXPECT_EQ(s.add_node(node("n1"), 0), 1u);
    s.submit(job(1, 2, 4).priority(0, true), 10);
    s.submit(job(2, 1, 8).priority(0, true), 10);
    auto decisions = s.schedule(20);
    ASSERT_EQ(decisions.size(), 2u);
    std::set<std::pair<std::string, std::uint32_t>> used;
    for (const auto& d : decisions) {
        EXPECT_EQ(d.kind, ZENITH_DECISION_START);
        for (const auto& m : d.members) {
            for (auto g : m.gpus) {
                EXPECT_TRUE(used.insert({m.node, g}).second) << m.node << " GPU " << g;
            }
        }
        s.job_started(d.job, 30);
    }
    EXPECT_EQ(used.size(), 16u);
    EXPECT_EQ(s.job_state(1), zenith::JobState::Running);

    auto probe = job(9, 1, 1);
    EXPECT_FALSE(s.test_only(probe).has_value());
    EXPECT_FALSE(s.will_run(probe).has_value());

    s.submit(job(3, 2, 8).priority(5, false).max_runtime(60000).gang(2, zenith::Locality::Spread),
             40);
    decisions = s.schedule(40);
    ASSERT_EQ(decisions.size(), 3u);
    EXPECT_EQ(decisions[0].kind, ZENITH_DECISION_PREEMPT);
    EXPECT_EQ(decisions[1].kind, ZENITH_DECISION_PREEMPT);
    EXPECT_EQ(decisions[0].by, 3u);
    EXPECT_EQ(decisions[2].kind, ZENITH_DECISION_START);
    EXPECT_EQ(decisions[2].members.size(), 2u);
    EXPECT_NE(decisions[2].members[0].node, decisions[2].members[1].node);
    s.job_started(3, 50);
    EXPECT_EQ(s.will_run(job(10, 1, 8)).value_or(0), 50u + 60000u);
    const auto stats = s.stats();
    EXPECT_EQ(stats.preemptions_total, 2u);
    EXPECT_EQ(stats.jobs[ZENITH_JOB_SUSPENDED], 2u);
}

TEST(Scheduler, ErrorsCarryTheirCodes) {
    zenith::Scheduler s;
    s.add_node(node("n0"), 0);
    EXPECT_EQ(code_of([&] { s.add_node(node("n0"), 0); }), ZENITH_ERR_ALREADY_EXISTS);
    EXPECT_EQ(code_of([&] { s.cancel(99, 0); }), ZENITH_ERR_NOT_FOUND);
    EXPECT_EQ(code_of([&] { zenith::JobSpec(1, "x").validate(); }), ZENITH_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(code_of([&] { job(1, 1, 1).command("/bin/true").env("1BAD", "x").validate(); }),
              ZENITH_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(code_of([] { zenith::Scheduler(zenith::SchedulerOptions{"lottery", "", false}); }),
              ZENITH_ERR_INVALID_ARGUMENT);
    s.submit(job(1, 1, 1), 5);
    s.cancel(1, 6);
    EXPECT_EQ(code_of([&] { s.cancel(1, 7); }), ZENITH_ERR_INVALID_STATE);
    EXPECT_EQ(code_of([&] { s.schedule(1); }), ZENITH_ERR_INVALID_STATE);
    zenith::Scheduler moved = std::move(s);
    EXPECT_EQ(code_of([&] { s.schedule(10); }), ZENITH_ERR_NULL_ARGUMENT);
    EXPECT_EQ(moved.job_state(1), zenith::JobState::Cancelled);
}

TEST(Scheduler, RestoresFromItsJournal) {
    const std::string path = "build/tests/cpp/scheduler.journal";
    std::remove(path.c_str());
    {
        zenith::Scheduler s(zenith::SchedulerOptions{"zenith", path, false});
        s.add_node(node("n0"), 0);
        s.submit(job(1, 1, 8), 0);
        s.submit(job(2, 1, 8), 0);
        auto decisions = s.schedule(10);
        ASSERT_EQ(decisions.size(), 1u);
        s.job_started(decisions[0].job, 20);
    }
    zenith::Scheduler restored(zenith::SchedulerOptions{"zenith", path, false});
    EXPECT_GT(restored.stats().restored_records, 4u);
    const std::uint64_t running = restored.job_state(1) == zenith::JobState::Running ? 1 : 2;
    EXPECT_EQ(restored.job_state(3 - running), zenith::JobState::Queued);
    restored.job_completed(running, 100);
    auto decisions = restored.schedule(100);
    ASSERT_EQ(decisions.size(), 1u);
    EXPECT_EQ(decisions[0].job, 3 - running);
    std::remove(path.c_str());
}

TEST(Scheduler, QueueQuotasHoldJobsBack) {
    zenith::Scheduler s;
    s.add_node(node("n0"), 0);
    s.set_queue(zenith::QueueSpec("small")
                    .limit(ZENITH_QUEUE_NOMINAL, 4000, 1000000, 1u << 30)
                    .cohort("lab", 2));
    s.submit(job(1, 1, 4).queue("small"), 0);
    s.submit(job(2, 1, 4).queue("small"), 0);
    const auto decisions = s.schedule(1);
    ASSERT_EQ(decisions.size(), 1u);  // the node has room for both, the quota for one
    EXPECT_EQ(code_of([] { zenith::QueueSpec("q").limit(7, 0, 0, 0); }),
              ZENITH_ERR_INVALID_ARGUMENT);
}
