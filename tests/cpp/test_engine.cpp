// test_engine.cpp — the event engine through zenith.hpp: a C++ lambda stage and the normalize
// WASM plugin, order across threads of publishers, a failed event thrown as zenith::EventFailed in
// its place, back-pressure giving the batch back, shutdown releasing events in flight, and errors
// as zenith::Error with their codes. The plugin comes from `make plugins` (build/plugins, or
// $ZENITH_TEST_PLUGINS).
#include "common.hpp"

#include <atomic>
#include <cmath>
#include <thread>

namespace {

// ---- A one-column (float64 "x") record batch as a struct array, built by hand ----------------

struct BatchMemory {
    std::vector<double> values;
    const void* child_buffers[2] = {nullptr, nullptr};
    const void* parent_buffers[1] = {nullptr};
    ArrowArray child{};
    ArrowArray* children[1] = {nullptr};
};

struct SchemaMemory {
    ArrowSchema child{};
    ArrowSchema* children[1] = {nullptr};
};

zenith::ArrowBatch make_batch(std::vector<double> values) {
    auto* memory = new BatchMemory;
    memory->values = std::move(values);
    auto rows = static_cast<std::int64_t>(memory->values.size());
    memory->child_buffers[1] = memory->values.data();
    memory->child.length = rows;
    memory->child.n_buffers = 2;
    memory->child.buffers = memory->child_buffers;
    memory->child.release = [](ArrowArray* a) { a->release = nullptr; };
    memory->children[0] = &memory->child;
    ArrowArray array{};
    array.length = rows;
    array.n_buffers = 1;
    array.n_children = 1;
    array.buffers = memory->parent_buffers;
    array.children = memory->children;
    array.private_data = memory;
    array.release = [](ArrowArray* a) {
        auto* m = static_cast<BatchMemory*>(a->private_data);
        if (m->child.release != nullptr) m->child.release(&m->child);
        delete m;
        a->release = nullptr;
    };

    auto* schema_memory = new SchemaMemory;
    schema_memory->child.format = "g";
    schema_memory->child.name = "x";
    schema_memory->child.flags = ARROW_FLAG_NULLABLE;
    schema_memory->child.release = [](ArrowSchema* s) { s->release = nullptr; };
    schema_memory->children[0] = &schema_memory->child;
    ArrowSchema schema{};
    schema.format = "+s";
    schema.name = "";
    schema.n_children = 1;
    schema.children = schema_memory->children;
    schema.private_data = schema_memory;
    schema.release = [](ArrowSchema* s) {
        auto* m = static_cast<SchemaMemory*>(s->private_data);
        if (m->child.release != nullptr) m->child.release(&m->child);
        delete m;
        s->release = nullptr;
    };
    return zenith::ArrowBatch{zenith::UniqueArrowArray(&array), zenith::UniqueArrowSchema(&schema)};
}

std::vector<double> values_of(const zenith::ArrowBatch& batch) {
    const ArrowArray* child = batch.array->children[0];
    const auto* data = static_cast<const double*>(child->buffers[1]) + child->offset;
    return std::vector<double>(data, data + child->length);
}

std::string plugin(const std::string& name) {
    const char* dir = std::getenv("ZENITH_TEST_PLUGINS");
    return std::string(dir != nullptr && *dir != '\0' ? dir : "build/plugins") + "/" + name;
}

// x -> 2x; fails events whose first value is negative.
zenith::Stage doubling() {
    return zenith::Stage::native("double", [](zenith::ArrowBatch&& in) {
        std::vector<double> x = values_of(in);
        if (!x.empty() && x[0] < 0) throw std::runtime_error("negative first value");
        for (double& v : x) v *= 2;
        return make_batch(std::move(x));
    });
}

}  // namespace

TEST(Engine, NativeStageTransformsInOrderAcrossPublishers) {
    zenith::Stage stage = doubling();
    zenith::Engine engine(zenith::EngineOptions().capacity(8).workers(3).stage(stage));
    constexpr int kThreads = 3, kPerThread = 100;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&engine, t] {
            for (int i = 0; i < kPerThread; i++) {
                zenith::ArrowBatch batch = make_batch({t * 1000.0 + i, 1.0});
                ASSERT_TRUE(engine.publish(batch).has_value());
                EXPECT_FALSE(batch.array);  // moved into the engine
            }
        });
    }
    std::vector<std::uint64_t> sequences;
    std::vector<int> last(kThreads, -1);
    for (int n = 0; n < kThreads * kPerThread; n++) {
        std::optional<zenith::Event> event = engine.poll();
        ASSERT_TRUE(event.has_value());
        sequences.push_back(event->sequence);
        std::vector<double> x = values_of(event->batch);
        ASSERT_EQ(x.size(), 2u);
        EXPECT_EQ(x[1], 2.0);
        int t = static_cast<int>(x[0] / 2000.0), i = static_cast<int>(x[0] / 2.0) - t * 1000;
        EXPECT_EQ(i, last[t] + 1) << "publisher " << t << " out of order";
        last[t] = i;
    }
    for (std::thread& thread : threads) thread.join();
    for (std::size_t n = 0; n < sequences.size(); n++) EXPECT_EQ(sequences[n], n);
    EXPECT_FALSE(engine.poll(0).has_value());
}

TEST(Engine, NormalizePluginMatchesTheFormula) {
    zenith::Engine engine(zenith::EngineOptions().stage(zenith::Stage::wasm(plugin("normalize.wasm"))));
    std::vector<double> x = {1, 2, 3, 4, 10};
    zenith::ArrowBatch batch = make_batch(x);
    ASSERT_EQ(engine.publish(batch), std::optional<std::uint64_t>(0));
    std::optional<zenith::Event> event = engine.poll();
    ASSERT_TRUE(event.has_value());
    double mean = 4, var = 0;
    for (double v : x) var += (v - mean) * (v - mean);
    double sd = std::sqrt(var / 5);
    std::vector<double> got = values_of(event->batch);
    ASSERT_EQ(got.size(), x.size());
    for (std::size_t i = 0; i < x.size(); i++) EXPECT_NEAR(got[i], (x[i] - mean) / sd, 1e-12);
}

TEST(Engine, FailedEventIsThrownInItsPlace) {
    zenith::Stage stage = doubling();
    zenith::Engine engine(zenith::EngineOptions().stage(stage));
    for (double first : {1.0, -1.0, 3.0}) {
        zenith::ArrowBatch batch = make_batch({first});
        ASSERT_TRUE(engine.publish(batch).has_value());
    }
    EXPECT_EQ(values_of(engine.poll()->batch), std::vector<double>{2.0});
    try {
        engine.poll();
        ADD_FAILURE() << "expected zenith::EventFailed";
    } catch (const zenith::EventFailed& e) {
        EXPECT_EQ(e.code(), ZENITH_ERR_EVENT_FAILED);
        EXPECT_EQ(e.sequence(), 1u);
        EXPECT_TRUE(zenith_test::contains(e.what(), "negative first value")) << e.what();
    }
    EXPECT_EQ(values_of(engine.poll()->batch), std::vector<double>{6.0});
}

// The same stage objects as loader stages: run on the loader's workers, in order, a failing
// batch thrown with ZENITH_ERR_EVENT_FAILED and delivered by the retry.
TEST(Engine, LoaderStagesTransformEveryBatchInOrder) {
    zenith::Stage stage = doubling();
    std::atomic<int> failures{0};
    zenith::Stage fail_once = zenith::Stage::native("fail_once", [&failures](zenith::ArrowBatch&& in) {
        std::vector<double> x = values_of(in);
        // Batch 3 (rows 3000.., value row / 2, doubled) fails the first time.
        if (!x.empty() && x[0] == 3000.0 && failures.fetch_add(1) == 0) {
            throw std::runtime_error("not this time");
        }
        return make_batch(std::move(x));
    });
    zenith::Loader loader(zenith_test::data_path("basic.arrow"),
                          zenith::LoaderOptions()
                              .batch_size(1000)
                              .shuffle(zenith::Shuffle::None)
                              .num_workers(3)
                              .shard_none()
                              .columns({"value"})
                              .stage(stage)
                              .stage(fail_once));
    double next = 0;
    int thrown = 0;
    for (;;) {
        std::optional<zenith::Batch> batch;
        try {
            batch = loader.next();
        } catch (const zenith::Error& e) {
            thrown++;
            EXPECT_EQ(e.code(), ZENITH_ERR_EVENT_FAILED);
            EXPECT_TRUE(zenith_test::contains(e.what(), "stage `fail_once` failed on batch 3"))
                << e.what();
            EXPECT_TRUE(zenith_test::contains(e.what(), "not this time")) << e.what();
            continue;
        }
        if (!batch) break;
        for (double v : values_of(batch->export_arrow())) {
            ASSERT_EQ(v, next);
            next++;
        }
    }
    EXPECT_EQ(thrown, 1);
    EXPECT_EQ(next, 10000.0);
}

TEST(Engine, BackPressureGivesTheBatchBack) {
    zenith::Engine engine(zenith::EngineOptions().capacity(1));
    zenith::ArrowBatch first = make_batch({1.0});
    ASSERT_TRUE(engine.publish(first, 0).has_value());
    zenith::ArrowBatch second = make_batch({2.0, 3.0});
    EXPECT_FALSE(engine.publish(second, 10).has_value());
    ASSERT_TRUE(second.array);  // still ours, whole
    EXPECT_EQ(values_of(second), (std::vector<double>{2.0, 3.0}));
    EXPECT_EQ(values_of(engine.poll()->batch), std::vector<double>{1.0});
    ASSERT_EQ(engine.publish(second, 1000), std::optional<std::uint64_t>(1));
    EXPECT_EQ(values_of(engine.poll()->batch), (std::vector<double>{2.0, 3.0}));
}

TEST(Engine, ShutdownReleasesEventsInFlight) {
    zenith::Engine engine(zenith::EngineOptions().capacity(16));
    for (int i = 0; i < 4; i++) {
        zenith::ArrowBatch batch = make_batch({double(i)});
        ASSERT_TRUE(engine.publish(batch).has_value());
    }
    EXPECT_TRUE(engine.poll().has_value());
    EXPECT_EQ(engine.shutdown(), 3u);
    EXPECT_EQ(engine.shutdown(), 0u);
    zenith::ArrowBatch late = make_batch({1.0});
    EXPECT_EQ(zenith_test::error_from([&] { engine.publish(late); }).code(),
              ZENITH_ERR_INVALID_ARGUMENT);
}

TEST(Engine, DestructorReleasesEventsInFlight) {
    // Valgrind (tests/cpp/run.sh) checks that the unpolled events' memory is released.
    zenith::Stage stage = doubling();
    zenith::Engine engine(zenith::EngineOptions().stage(stage));
    for (int i = 0; i < 5; i++) {
        zenith::ArrowBatch batch = make_batch({double(i), 1.0});
        ASSERT_TRUE(engine.publish(batch).has_value());
    }
}

TEST(Engine, ErrorsCarryTheirStatus) {
    EXPECT_EQ(zenith_test::error_from([] { zenith::Stage::wasm(plugin("missing.wasm")); }).code(),
              ZENITH_ERR_NOT_FOUND);
    EXPECT_EQ(zenith_test::error_from([] { zenith::EngineOptions().capacity(0); }).code(),
              ZENITH_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(zenith_test::error_from([] { zenith::EngineOptions().workers(0); }).code(),
              ZENITH_ERR_INVALID_ARGUMENT);
    zenith::Engine moved_from;
    zenith::Engine taker(std::move(moved_from));
    EXPECT_EQ(zenith_test::error_from([&] { moved_from.poll(0); }).code(),
              ZENITH_ERR_NULL_ARGUMENT);
}
