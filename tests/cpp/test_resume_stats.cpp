// test_resume_stats.cpp — resume tokens (save_state → resume_state delivers exactly the batches
// not yet delivered, also with another number of workers and in a later epoch) and stats().
#include "common.hpp"

#include <vector>

using zenith_test::data_path;
using zenith_test::error_from;
using zenith_test::ids_of;
using zenith_test::in_order;
using zenith_test::kBasicRows;

namespace {

zenith::LoaderOptions shuffled(std::size_t workers) {
    return zenith::LoaderOptions().batch_size(500).seed(11).num_workers(workers);
}

/// The ids of each batch left in the loader's current epoch.
std::vector<std::vector<std::int64_t>> rest_of_epoch(zenith::Loader& loader) {
    std::vector<std::vector<std::int64_t>> batches;
    for (zenith::Batch& batch : loader) batches.push_back(ids_of(batch));
    return batches;
}

}  // namespace

TEST(Resume, DeliversExactlyTheBatchesNotYetDelivered) {
    zenith::Loader reference(data_path("basic.arrow"), shuffled(2));
    const auto all = rest_of_epoch(reference);
    ASSERT_EQ(all.size(), 20u);

    std::vector<std::uint8_t> token;
    {
        zenith::Loader first(data_path("basic.arrow"), shuffled(2));
        for (int i = 0; i < 7; i++) (void)first.next();
        token = first.save_state();
    }  // e.g. the job is preempted here
    ASSERT_FALSE(token.empty());
    EXPECT_LE(token.size(), static_cast<std::size_t>(ZENITH_RESUME_STATE_SIZE));

    // Another number of workers resumes identically.
    zenith::Loader resumed(data_path("basic.arrow"), shuffled(0).resume_state(token));
    const auto rest = rest_of_epoch(resumed);
    EXPECT_EQ(rest, decltype(all)(all.begin() + 7, all.end()));
}

TEST(Resume, KeepsTheEpoch) {
    zenith::Loader reference(data_path("basic.arrow"), shuffled(1));
    reference.set_epoch(2);
    const auto all = rest_of_epoch(reference);

    zenith::Loader first(data_path("basic.arrow"), shuffled(1));
    first.set_epoch(2);
    for (int i = 0; i < 3; i++) (void)first.next();
    zenith::Loader resumed(data_path("basic.arrow"), shuffled(3).resume_state(first.save_state()));
    EXPECT_EQ(resumed.stats().epoch, 2u);
    EXPECT_EQ(rest_of_epoch(resumed), decltype(all)(all.begin() + 3, all.end()));
}

TEST(Resume, ATokenForOtherOptionsIsRejectedAtOpen) {
    zenith::Loader first(data_path("basic.arrow"), shuffled(1));
    (void)first.next();
    const std::vector<std::uint8_t> token = first.save_state();
    const zenith::Error e = error_from([&] {
        zenith::Loader loader(data_path("basic.arrow"), shuffled(1).seed(12).resume_state(token));
    });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT) << e.what();
}

TEST(Stats, CountWhatWasDelivered) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(768).num_workers(2).prefetch(3));
    zenith_stats before = loader.stats();
    EXPECT_EQ(before.struct_size, sizeof(zenith_stats));
    EXPECT_EQ(before.rows, 0u);
    EXPECT_EQ(before.batches, 0u);
    EXPECT_EQ(before.time_to_first_batch_ns, 0u);
    EXPECT_EQ(before.batches_per_epoch, 14u);
    EXPECT_EQ(before.num_workers, 2u);
    EXPECT_EQ(before.shuffle_mode, ZENITH_SHUFFLE_NONE);

    std::size_t batches = 0;
    for (zenith::Batch& batch : loader) {
        batches += batch.num_rows() > 0;
        EXPECT_LE(loader.stats().queue_depth, 3u);  // bounded by the prefetch depth
    }
    const zenith_stats after = loader.stats();
    EXPECT_EQ(after.rows, static_cast<std::uint64_t>(kBasicRows));
    EXPECT_EQ(after.batches, batches);
    EXPECT_EQ(after.batches, loader.num_batches());
    EXPECT_GT(after.bytes, 0u);
    EXPECT_GT(after.time_to_first_batch_ns, 0u);
    EXPECT_EQ(after.epoch, 0u);

    loader.set_epoch(4);
    EXPECT_EQ(loader.stats().epoch, 4u);
    EXPECT_EQ(loader.stats().shuffle_mode, ZENITH_SHUFFLE_NONE);
}
