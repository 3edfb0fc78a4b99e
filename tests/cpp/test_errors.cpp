// test_errors.cpp — zenith::Error and zenith::check, and the errors a user meets: missing,
// corrupt and mismatched files, bad option values, errors in the middle of an epoch.
#include "common.hpp"

#include <stdexcept>
#include <string>

using zenith_test::contains;
using zenith_test::data_path;
using zenith_test::error_from;
using zenith_test::in_order;

TEST(Version, RunTimeLibraryMatchesHeader) {
    const std::string expected = std::to_string(ZENITH_VERSION_MAJOR) + "." +
                                 std::to_string(ZENITH_VERSION_MINOR) + "." +
                                 std::to_string(ZENITH_VERSION_PATCH);
    EXPECT_EQ(zenith::version(), expected);
    EXPECT_EQ(zenith::version_number(), static_cast<std::uint32_t>(ZENITH_VERSION_NUMBER));
}

TEST(Error, IsARuntimeErrorWithCodeAndMessage) {
    try {
        throw zenith::Error(ZENITH_ERR_NOT_FOUND, "data.arrow: no such file");
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "data.arrow: no such file");
        const auto* error = dynamic_cast<const zenith::Error*>(&e);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->code(), ZENITH_ERR_NOT_FOUND);
        EXPECT_STREQ(error->status_str(), zenith_status_str(ZENITH_ERR_NOT_FOUND));
    }
}

TEST(Check, PassesOkAndDone) {
    zenith_error* err = nullptr;
    EXPECT_EQ(zenith::check(ZENITH_OK, err), ZENITH_OK);
    EXPECT_EQ(zenith::check(ZENITH_DONE, err), ZENITH_DONE);
    EXPECT_EQ(zenith::check(ZENITH_OK), ZENITH_OK);
}

TEST(Check, ThrowsTheCErrorAndFreesIt) {
    zenith_error* err = nullptr;
    // The C call fills `err` before check reads it, whatever the argument evaluation order.
    const zenith::Error e = error_from(
        [&] { zenith::check(zenith_loader_options_set_batch_size(nullptr, 1, &err), err); });
    EXPECT_EQ(e.code(), ZENITH_ERR_NULL_ARGUMENT);
    EXPECT_TRUE(contains(e.what(), "opts")) << e.what();
    EXPECT_EQ(err, nullptr);  // freed (valgrind would report a leak otherwise) and reset
}

TEST(Check, WithoutAnErrorObjectUsesTheStatusText) {
    zenith_error* err = nullptr;
    const zenith::Error e = error_from([&] { zenith::check(ZENITH_ERR_IO, err); });
    EXPECT_EQ(e.code(), ZENITH_ERR_IO);
    EXPECT_STREQ(e.what(), zenith_status_str(ZENITH_ERR_IO));
}

TEST(OpenErrors, MissingPathIsNotFound) {
    for (const char* name : {"missing.arrow", "missing_dir/", "empty_dir"}) {
        const zenith::Error e = error_from([&] { zenith::Loader loader(data_path(name)); });
        EXPECT_EQ(e.code(), ZENITH_ERR_NOT_FOUND) << name << ": " << e.what();
        EXPECT_TRUE(contains(e.what(), name)) << e.what();
    }
}

TEST(OpenErrors, BrokenFilesAreFormatErrors) {
    for (const char* name :
         {"truncated.arrow", "corrupt_footer.arrow", "zero_bytes.arrow", "truncated.arrows",
          "corrupt.arrows", "truncated.parquet", "corrupt_footer.parquet", "malformed.csv",
          "bad_value.csv", "not_a_dataset.bin"}) {
        const zenith::Error e = error_from([&] { zenith::Loader loader(data_path(name)); });
        EXPECT_EQ(e.code(), ZENITH_ERR_FORMAT) << name << ": " << e.what();
        EXPECT_TRUE(contains(e.what(), name)) << e.what();
    }
}

TEST(OpenErrors, ShardsWithDifferentSchemasAreAMismatch) {
    const zenith::Error e = error_from([] { zenith::Loader loader(data_path("mixed_shards")); });
    EXPECT_EQ(e.code(), ZENITH_ERR_SCHEMA_MISMATCH);
    EXPECT_TRUE(contains(e.what(), "part-0.parquet") && contains(e.what(), "part-1.parquet"))
        << e.what();
}

TEST(OpenErrors, UnknownColumnIsInvalid) {
    const zenith::Error e = error_from([] {
        zenith::Loader loader(data_path("basic.arrow"),
                              zenith::LoaderOptions().columns({"id", "nope"}));
    });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(e.what(), "nope")) << e.what();
}

TEST(OpenErrors, PathWithANulByteIsInvalidNotCutShort) {
    const std::string path = data_path("basic.arrow") + std::string(1, '\0') + "junk";
    const zenith::Error e = error_from([&] { zenith::Loader loader(path); });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT);
}

TEST(OptionErrors, BadValuesThrowInvalidArgument) {
    zenith::LoaderOptions opts;
    const std::vector<std::pair<const char*, std::function<void()>>> cases = {
        {"batch_size(0)", [&] { opts.batch_size(0); }},
        {"prefetch(0)", [&] { opts.prefetch(0); }},
        {"num_workers(257)", [&] { opts.num_workers(ZENITH_MAX_WORKERS + 1); }},
        {"shard(2, 2)", [&] { opts.shard(2, 2); }},
        {"shard(5, 3)", [&] { opts.shard(5, 3); }},
        {"shard(0, 0)", [&] { opts.shard(0, 0); }},
        {"columns(id, id)", [&] { opts.columns({"id", "id"}); }},
        {"columns(NUL)", [&] { opts.columns({std::string("i\0d", 3)}); }},
        {"columns({})", [&] { opts.columns({}); }},
        {"resume_state({})", [&] { opts.resume_state({}); }},
        {"resume_state(junk)", [&] { opts.resume_state(std::vector<std::uint8_t>(96, 0xA5)); }},
    };
    for (const auto& [name, set] : cases) {
        const zenith::Error e = error_from(set);
        EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT) << name << ": " << e.what();
        EXPECT_NE(std::string(e.what()), "") << name;
    }
    EXPECT_TRUE(contains(error_from([&] { opts.batch_size(0); }).what(), "batch_size"));
    EXPECT_TRUE(contains(error_from([&] { opts.shard(2, 2); }).what(), "rank 2"));
    EXPECT_TRUE(contains(error_from([&] { opts.columns({}); }).what(), "columns must not be empty"));
}

TEST(OpenErrors, AWorldLargerThanTheDataAndAGlobalShuffleOverBudget) {
    const zenith::Error world = error_from([] {
        zenith::Loader(data_path("basic.arrow"), zenith::LoaderOptions().shard(0, 10001));
    });
    EXPECT_EQ(world.code(), ZENITH_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(world.what(), "larger than the dataset")) << world.what();
    const zenith::Error budget = error_from([] {
        zenith::Loader(data_path("parquet/basic.snappy.parquet"),
                       zenith::LoaderOptions().shuffle(zenith::Shuffle::Global).memory_budget(200000));
    });
    EXPECT_EQ(budget.code(), ZENITH_ERR_OUT_OF_MEMORY);
    EXPECT_TRUE(contains(budget.what(), "memory budget (200000 bytes)")) << budget.what();
}

TEST(OptionErrors, AFailedSetterLeavesTheOptionsUnchanged) {
    zenith::LoaderOptions opts = in_order(100);
    EXPECT_THROW(opts.batch_size(0), zenith::Error);
    EXPECT_THROW(opts.shard(3, 3), zenith::Error);
    zenith::Loader loader(data_path("basic.arrow"), opts);
    EXPECT_EQ(loader.num_batches(), 100u);  // batch size 100, one rank
}

TEST(EpochErrors, CorruptDataFailsInNextWithoutConsumingTheBatch) {
    // corrupt.parquet opens (its footer is fine); its first row group is garbage.
    zenith::Loader loader(data_path("corrupt.parquet"), in_order(100).num_workers(0));
    for (int attempt = 0; attempt < 2; attempt++) {
        const zenith::Error e = error_from([&] { (void)loader.next(); });
        EXPECT_EQ(e.code(), ZENITH_ERR_FORMAT) << e.what();
        EXPECT_TRUE(contains(e.what(), "corrupt.parquet") && contains(e.what(), "row group 0"))
            << e.what();
    }
}

TEST(EpochErrors, RangeForPropagatesTheError) {
    zenith::Loader loader(data_path("corrupt.parquet"), in_order(100).num_workers(2));
    std::size_t batches = 0;
    const zenith::Error e = error_from([&] {
        for (zenith::Batch& batch : loader) {
            batches += batch.num_rows() > 0;
        }
    });
    EXPECT_EQ(e.code(), ZENITH_ERR_FORMAT) << e.what();
    EXPECT_EQ(batches, 0u);
}
