// test_iteration.cpp — range-for and next() over epochs: content and batch sizes in dataset
// order for every source format, drop_last, epochs, shuffles that are permutations and do not
// depend on the number of workers, shards, column projection.
#include "common.hpp"

#include <cctype>
#include <numeric>
#include <set>
#include <string>
#include <vector>

using zenith_test::data_path;
using zenith_test::Epoch;
using zenith_test::ids_of;
using zenith_test::in_order;
using zenith_test::is_permutation_of_rows;
using zenith_test::kBasicRows;
using zenith_test::read_epoch;

namespace {

std::vector<std::int64_t> iota_ids(std::int64_t n) {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
    std::iota(ids.begin(), ids.end(), 0);
    return ids;
}

/// Batch sizes of an epoch of `rows` rows: full batches, then the remainder (unless dropped).
std::vector<std::size_t> expected_sizes(std::size_t rows, std::size_t batch, bool drop_last) {
    std::vector<std::size_t> sizes(rows / batch, batch);
    if (rows % batch != 0 && !drop_last) sizes.push_back(rows % batch);
    return sizes;
}

}  // namespace

// The same 10,000 rows, whatever the format or layout they are stored in.
class EverySource : public ::testing::TestWithParam<const char*> {};

TEST_P(EverySource, RangeForDeliversEveryRowInOrderInFullBatches) {
    zenith::Loader loader(data_path(GetParam()), in_order(768).num_workers(2));
    EXPECT_EQ(loader.num_batches(), 14u);  // 13 * 768 + 16
    const Epoch epoch = read_epoch(loader);
    EXPECT_EQ(epoch.batch_rows, expected_sizes(kBasicRows, 768, false));
    EXPECT_EQ(epoch.ids, iota_ids(kBasicRows));
}

std::string test_name(const ::testing::TestParamInfo<const char*>& param_info) {
    std::string name = param_info.param;
    for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return name;
}

INSTANTIATE_TEST_SUITE_P(Sources, EverySource,
                         ::testing::Values("basic.arrow", "single_batch.arrow", "basic.arrows",
                                           "parquet/basic.zstd.parquet",
                                           "parquet/basic.snappy.parquet", "shards", "basic.csv"),
                         test_name);

TEST(Iteration, EveryValueOfEveryBatchMatchesItsRowId) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(1000));
    std::int64_t rows = 0;
    for (zenith::Batch& batch : loader) {
        const zenith::ArrowBatch exported = batch.export_arrow();
        EXPECT_EQ(zenith_test::verify_basic_array(*exported.array), 0);
        rows += exported.array->length;
    }
    EXPECT_EQ(rows, kBasicRows);
}

TEST(Iteration, DropLastDropsTheShortBatch) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(768).drop_last());
    EXPECT_EQ(loader.num_batches(), 13u);
    const Epoch epoch = read_epoch(loader);
    EXPECT_EQ(epoch.batch_rows, expected_sizes(kBasicRows, 768, true));
    EXPECT_EQ(epoch.ids, iota_ids(13 * 768));
}

TEST(Iteration, NextReturnsNulloptAtTheEndAndAfter) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(4000));
    std::vector<std::size_t> rows;
    while (std::optional<zenith::Batch> batch = loader.next()) {
        rows.push_back(batch->num_rows());
    }
    EXPECT_EQ(rows, (std::vector<std::size_t>{4000, 4000, 2000}));
    EXPECT_FALSE(loader.next().has_value());
    EXPECT_TRUE(loader.begin() == loader.end());  // range-for over a finished epoch: no steps
}

TEST(Iteration, BatchesMovedOutOfTheLoopStayValid) {
    std::vector<zenith::Batch> kept;
    {
        zenith::Loader loader(data_path("basic.arrow"), in_order(3000));
        for (zenith::Batch& batch : loader) {
            kept.push_back(std::move(batch));
            EXPECT_FALSE(batch);  // NOLINT(bugprone-use-after-move): moved-from is empty
        }
    }  // the loader is gone
    ASSERT_EQ(kept.size(), 4u);
    std::vector<std::int64_t> ids;
    for (const zenith::Batch& batch : kept) {
        const std::vector<std::int64_t> batch_ids = ids_of(batch);
        ids.insert(ids.end(), batch_ids.begin(), batch_ids.end());
    }
    EXPECT_EQ(ids, iota_ids(kBasicRows));
}

TEST(Iteration, SetEpochStartsTheNextEpoch) {
    zenith::Loader loader(data_path("basic.arrow"),
                          zenith::LoaderOptions().batch_size(1000).seed(3));
    const Epoch first = read_epoch(loader);
    loader.set_epoch(1);
    const Epoch second = read_epoch(loader);
    EXPECT_TRUE(is_permutation_of_rows(first.ids, kBasicRows));
    EXPECT_TRUE(is_permutation_of_rows(second.ids, kBasicRows));
    EXPECT_NE(first.ids, second.ids);  // the order depends on the epoch
    loader.set_epoch(0);
    EXPECT_EQ(read_epoch(loader).ids, first.ids);  // ... and only on it
}

TEST(Shuffle, GlobalIsAPermutationThatDependsOnTheSeedOnly) {
    auto epoch_ids = [](std::uint64_t seed, std::size_t workers) {
        zenith::Loader loader(data_path("basic.arrow"),
                              zenith::LoaderOptions()
                                  .batch_size(512)
                                  .shuffle(zenith::Shuffle::Global)
                                  .seed(seed)
                                  .num_workers(workers));
        return read_epoch(loader);
    };
    const Epoch a = epoch_ids(7, 2);
    EXPECT_TRUE(is_permutation_of_rows(a.ids, kBasicRows));
    EXPECT_NE(a.ids, iota_ids(kBasicRows));
    EXPECT_EQ(a.batch_rows, expected_sizes(kBasicRows, 512, false));
    EXPECT_EQ(epoch_ids(7, 0).ids, a.ids);  // workers change speed, not order
    EXPECT_EQ(epoch_ids(7, 3).ids, a.ids);
    EXPECT_NE(epoch_ids(8, 2).ids, a.ids);
}

TEST(Shuffle, BlockIsAPermutation) {
    zenith::Loader loader(data_path("shards"), zenith::LoaderOptions()
                                                   .batch_size(1000)
                                                   .shuffle(zenith::Shuffle::Block)
                                                   .seed(1)
                                                   .memory_budget(64 * 1024));
    const Epoch epoch = read_epoch(loader);
    EXPECT_TRUE(is_permutation_of_rows(epoch.ids, kBasicRows));
    EXPECT_NE(epoch.ids, iota_ids(kBasicRows));
    EXPECT_EQ(loader.stats().shuffle_mode, ZENITH_SHUFFLE_BLOCK);
}

TEST(Shard, RanksDroppingTheRemainderGetDisjointEqualShares) {
    constexpr std::uint32_t world = 3;
    std::set<std::int64_t> all;
    for (std::uint32_t rank = 0; rank < world; rank++) {
        zenith::Loader loader(
            data_path("basic.arrow"),
            zenith::LoaderOptions().batch_size(1000).seed(5).shard(rank, world).shard_drop_remainder());
        const Epoch epoch = read_epoch(loader);
        EXPECT_EQ(epoch.ids.size(), static_cast<std::size_t>(kBasicRows / world)) << rank;
        EXPECT_EQ(loader.num_batches(), 4u) << rank;  // 3333 rows: 3 * 1000 + 333
        all.insert(epoch.ids.begin(), epoch.ids.end());
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kBasicRows / world * world));  // disjoint
}

TEST(Shard, PaddedRanksCoverEveryRowAndReportTheirShard) {
    constexpr std::uint32_t world = 3;
    std::set<std::int64_t> all;
    for (std::uint32_t rank = 0; rank < world; rank++) {
        zenith::Loader loader(data_path("basic.arrow"),
                              zenith::LoaderOptions().batch_size(1000).seed(5).shard(rank, world));
        const Epoch epoch = read_epoch(loader);
        EXPECT_EQ(epoch.ids.size(), static_cast<std::size_t>(kBasicRows / world + 1)) << rank;
        const zenith_stats stats = loader.stats();
        EXPECT_EQ(stats.rank, rank);
        EXPECT_EQ(stats.world_size, world);
        EXPECT_EQ(stats.shard_source, ZENITH_SHARD_FROM_OPTIONS);
        all.insert(epoch.ids.begin(), epoch.ids.end());
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kBasicRows));
    zenith::Loader everything(data_path("basic.arrow"), zenith::LoaderOptions().shard_none());
    EXPECT_EQ(everything.stats().world_size, 1u);
    EXPECT_EQ(everything.stats().shuffle_requested, ZENITH_SHUFFLE_AUTO);
}

TEST(Columns, ProjectionKeepsTheNamedColumnsInTheGivenOrder) {
    zenith::Loader loader(data_path("parquet/basic.gzip.parquet"),
                          in_order(2500).columns({"value", "id"}));
    const zenith::UniqueArrowSchema schema = loader.schema();
    ASSERT_EQ(schema->n_children, 2);
    EXPECT_STREQ(schema->children[0]->name, "value");
    EXPECT_STREQ(schema->children[1]->name, "id");
    std::int64_t expected_id = 0;
    for (zenith::Batch& batch : loader) {
        const zenith::ArrowBatch exported = batch.export_arrow();
        ASSERT_EQ(exported.array->n_children, 2);
        EXPECT_STREQ(exported.schema->children[0]->format, "g");
        const ArrowArray& value = *exported.array->children[0];
        const auto* values = static_cast<const double*>(value.buffers[1]) + value.offset;
        for (std::int64_t id : ids_of(batch)) {
            EXPECT_EQ(id, expected_id);
            EXPECT_EQ(*values++, static_cast<double>(id) * 0.5);
            expected_id++;
        }
    }
    EXPECT_EQ(expected_id, kBasicRows);
}
