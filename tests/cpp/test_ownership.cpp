// test_ownership.cpp — every wrapper owns its C object exactly once: move-only types, moved-from
// objects that are empty, destruct safely and throw ZENITH_ERR_NULL_ARGUMENT when used,
// move-assignment that frees what it replaces, idempotent close/reset, and handing raw handles
// to C and back. Run under valgrind: a double free or a leak fails the run.
#include "common.hpp"

#include <type_traits>
#include <utility>

using zenith_test::data_path;
using zenith_test::error_from;
using zenith_test::ids_of;
using zenith_test::in_order;

namespace {

template <class T>
constexpr bool move_only_v = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                             std::is_nothrow_move_constructible_v<T> &&
                             std::is_nothrow_move_assignable_v<T>;

static_assert(move_only_v<zenith::LoaderOptions>);
static_assert(move_only_v<zenith::Loader>);
static_assert(move_only_v<zenith::Loader::iterator>);
static_assert(move_only_v<zenith::Batch>);
static_assert(move_only_v<zenith::UniqueArrowArray>);
static_assert(move_only_v<zenith::UniqueArrowSchema>);
static_assert(move_only_v<zenith::UniqueArrowArrayStream>);
static_assert(move_only_v<zenith::ArrowBatch>);
static_assert(move_only_v<zenith::DLPackTensor>);
static_assert(std::is_base_of_v<std::runtime_error, zenith::Error>);
static_assert(std::is_same_v<std::underlying_type_t<zenith::Shuffle>, zenith_shuffle>);
static_assert(static_cast<zenith_shuffle>(zenith::Shuffle::None) == ZENITH_SHUFFLE_NONE);
static_assert(static_cast<zenith_shuffle>(zenith::Shuffle::Global) == ZENITH_SHUFFLE_GLOBAL);
static_assert(static_cast<zenith_shuffle>(zenith::Shuffle::Block) == ZENITH_SHUFFLE_BLOCK);

/// Asserts that `body` throws ZENITH_ERR_NULL_ARGUMENT.
void expect_empty_use(const char* what, const std::function<void()>& body) {
    const zenith::Error e = error_from(body);
    EXPECT_EQ(e.code(), ZENITH_ERR_NULL_ARGUMENT) << what << ": " << e.what();
    EXPECT_TRUE(zenith_test::contains(e.what(), "empty")) << what << ": " << e.what();
}

}  // namespace

TEST(Ownership, MovedFromLoaderIsEmptyAndThrowsWhenUsed) {
    zenith::Loader a(data_path("basic.arrow"), in_order(1000));
    zenith::Loader b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the point of the test
    EXPECT_EQ(a.get(), nullptr);
    EXPECT_EQ(a.num_batches(), 0u);
    expect_empty_use("next", [&] { (void)a.next(); });
    expect_empty_use("begin", [&] { (void)a.begin(); });
    expect_empty_use("schema", [&] { (void)a.schema(); });
    expect_empty_use("stats", [&] { (void)a.stats(); });
    expect_empty_use("save_state", [&] { (void)a.save_state(); });
    expect_empty_use("set_epoch", [&] { a.set_epoch(1); });
    expect_empty_use("export_stream", [&] { (void)a.export_stream(); });
    ASSERT_TRUE(b);
    EXPECT_EQ(b.num_batches(), 10u);
    EXPECT_EQ(zenith_test::read_epoch(b).ids.size(), 10000u);
}  // both destructors run; only b frees

TEST(Ownership, MoveAssignmentFreesTheLoaderItReplaces) {
    zenith::Loader a(data_path("basic.arrow"), in_order(1000));
    zenith::Loader b(data_path("basic.parquet"), in_order(10));  // 100 rows
    (void)b.next();
    b = std::move(a);  // the Parquet loader is freed here (valgrind: no leak)
    EXPECT_FALSE(a);   // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(b.num_batches(), 10u);
    zenith::Loader& alias = b;
    b = std::move(alias);  // self-move keeps it
    EXPECT_EQ(b.num_batches(), 10u);
}

TEST(Ownership, CloseIsIdempotentAndBatchesOutliveIt) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(1000));
    zenith::Batch batch = *loader.next();
    loader.close();
    loader.close();  // a second close does nothing: no double free
    EXPECT_FALSE(loader);
    expect_empty_use("next after close", [&] { (void)loader.next(); });
    EXPECT_EQ(ids_of(batch).back(), 999);
}

TEST(Ownership, MovedFromBatchIsEmpty) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(100));
    zenith::Batch a = *loader.next();
    zenith::Batch b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(a.num_rows(), 0u);
    expect_empty_use("export_arrow", [&] { (void)a.export_arrow(); });
    expect_empty_use("export_array", [&] { (void)a.export_array(); });
    expect_empty_use("column_dlpack", [&] { (void)a.column_dlpack("id"); });
    expect_empty_use("column_dlpack_at", [&] { (void)a.column_dlpack_at(0); });
    EXPECT_EQ(b.num_rows(), 100u);
    a = *loader.next();  // a moved-from batch can be assigned again
    EXPECT_EQ(ids_of(a).front(), 100);
    EXPECT_FALSE(zenith::Batch());
}

TEST(Ownership, MovedFromOptionsAreEmpty) {
    zenith::LoaderOptions a = in_order(100);
    zenith::LoaderOptions b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
    expect_empty_use("batch_size", [&] { a.batch_size(10); });
    expect_empty_use("columns", [&] { a.columns({"id"}); });
    expect_empty_use("shard", [&] { a.shard(0, 1); });
    // Not silently the defaults: opening with moved-from options is an error.
    expect_empty_use("Loader(path, moved-from options)",
                     [&] { zenith::Loader loader(data_path("basic.arrow"), a); });
    zenith::Loader loader(data_path("basic.arrow"), b);
    EXPECT_EQ(loader.num_batches(), 100u);
}

TEST(Ownership, OptionsMayChangeOrDieAfterOpen) {
    zenith::Loader loader = [] {
        zenith::LoaderOptions opts = in_order(2000);
        zenith::Loader opened(data_path("basic.arrow"), opts);
        opts.batch_size(7);  // the loader kept a copy
        return opened;
    }();
    EXPECT_EQ(loader.num_batches(), 5u);
}

TEST(Ownership, RawHandlesGoToCAndBack) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(500));
    zenith::Batch batch = *loader.next();
    zenith_batch* raw_batch = batch.release();
    EXPECT_FALSE(batch);
    EXPECT_EQ(zenith_batch_num_rows(raw_batch), 500u);
    zenith::Batch adopted(raw_batch);  // owns it again; freed once

    zenith_loader* raw_loader = loader.release();
    EXPECT_FALSE(loader);
    zenith::Loader readopted(raw_loader);
    EXPECT_EQ(readopted.num_batches(), 20u);
    EXPECT_EQ(ids_of(*readopted.next()).front(), 500);

    zenith_loader* c_loader = nullptr;
    zenith_error* err = nullptr;
    zenith::check(zenith_loader_open(data_path("basic.arrow").c_str(), nullptr, &c_loader, &err),
                  err);
    zenith::Loader from_c(c_loader);
    EXPECT_GT(from_c.num_batches(), 0u);
}

TEST(Ownership, MovedFromExportsAreEmpty) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(100));
    zenith::Batch batch = *loader.next();
    zenith::UniqueArrowArray a = batch.export_array();
    zenith::UniqueArrowArray b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(b);
    b = batch.export_array();  // releases the first export
    EXPECT_EQ(b->length, 100);
    zenith::UniqueArrowArray& alias = b;
    b = std::move(alias);  // self-move keeps it
    EXPECT_TRUE(b);

    zenith::ArrowBatch x = batch.export_arrow();
    zenith::ArrowBatch y = std::move(x);
    EXPECT_FALSE(x.array);  // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(x.schema);
    EXPECT_TRUE(y.array && y.schema);

    zenith::UniqueArrowArrayStream s = loader.export_stream();
    zenith::UniqueArrowArrayStream t = std::move(s);
    EXPECT_FALSE(s);  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(t);

    zenith::DLPackTensor d = batch.column_dlpack("id");
    zenith::DLPackTensor e = std::move(d);
    EXPECT_EQ(d.get(), nullptr);  // NOLINT(bugprone-use-after-move)
    EXPECT_NE(e.get(), nullptr);
}

TEST(Ownership, IteratorKeepsWorkingAfterTheLoaderMoves) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(2500));
    zenith::Loader::iterator it = loader.begin();
    zenith::Loader moved = std::move(loader);
    std::int64_t next_id = 0;
    for (; it != moved.end(); ++it) {
        EXPECT_EQ(ids_of(*it).front(), next_id);
        next_id += static_cast<std::int64_t>(it->num_rows());
    }
    EXPECT_EQ(next_id, 10000);
}
