// test_placement_options.cpp — the placement and I/O options (io_backend, io_direct, numa_node,
// near_gpu) reach the library through zenith::LoaderOptions, change no rows, and show in
// stats(); io_fallback_reason() explains a fallback.
#include "common.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using zenith_test::data_path;
using zenith_test::error_from;
using zenith_test::ids_of;
using zenith_test::in_order;
using zenith_test::kBasicRows;

namespace {

std::vector<std::int64_t> all_ids(zenith::Loader& loader) {
    std::vector<std::int64_t> ids;
    for (zenith::Batch& batch : loader) {
        const auto part = ids_of(batch);
        ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
}

/// Memcheck cannot see the kernel fill buffers through io_uring (the writes happen outside any
/// system call it intercepts), so every byte read that way looks uninitialised to it: under
/// valgrind (tests/cpp/run.sh) io_uring is left to the C-outside-valgrind, Rust, Python and Go
/// tests, as tests/c/test_telemetry.c does.
bool under_valgrind() {
    const char* preload = std::getenv("LD_PRELOAD");
    return preload != nullptr && std::strstr(preload, "vgpreload") != nullptr;
}

std::vector<std::int64_t> iota(std::int64_t n) {
    std::vector<std::int64_t> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; i++) out[static_cast<std::size_t>(i)] = i;
    return out;
}

}  // namespace

TEST(Placement, EveryIoBackendReadsTheSameRows) {
    for (zenith::IoBackend backend :
         {zenith::IoBackend::Mmap, zenith::IoBackend::Pread, zenith::IoBackend::IoUring}) {
        if (backend == zenith::IoBackend::IoUring && under_valgrind()) {
            std::printf("Placement: IoBackend::IoUring skipped under valgrind (memcheck cannot "
                        "see io_uring's kernel writes)\n");
            continue;
        }
        zenith::Loader loader(data_path("parquet/basic.zstd.parquet"), in_order(1000).io_backend(backend));
        EXPECT_EQ(all_ids(loader), iota(kBasicRows));
        const zenith_stats stats = loader.stats();
        EXPECT_EQ(stats.io_backend_requested, static_cast<zenith_io_backend>(backend));
        if (stats.io_backend == stats.io_backend_requested) {
            EXPECT_EQ(loader.io_fallback_reason(), "");
        } else {  // io_uring refused by the kernel or seccomp: pread, and the reason
            EXPECT_EQ(backend, zenith::IoBackend::IoUring);
            EXPECT_EQ(stats.io_backend, ZENITH_IO_PREAD);
            EXPECT_FALSE(loader.io_fallback_reason().empty());
        }
        if (backend != zenith::IoBackend::Mmap) {
            EXPECT_GT(stats.io_read_bytes, 0u);
        }
    }
}

TEST(Placement, IoDirectReadsTheSameRows) {
    zenith::Loader loader(data_path("parquet/basic.zstd.parquet"),
                          in_order(1000).io_backend(zenith::IoBackend::Pread).io_direct(true));
    EXPECT_EQ(all_ids(loader), iota(kBasicRows));
}

TEST(Placement, NumaNodePinsTheWorkers) {
    zenith::Loader placed(data_path("basic.arrow"), in_order(1000).num_workers(2).numa_node(0));
    EXPECT_EQ(all_ids(placed), iota(kBasicRows));
    EXPECT_EQ(placed.stats().numa_node, 0);
    // Workers pin themselves as they start: after an epoch at least the one that built batches.
    EXPECT_GE(placed.stats().pinned_workers, 1u);
    EXPECT_LE(placed.stats().pinned_workers, 2u);

    zenith::Loader unplaced(data_path("basic.arrow"), in_order(1000).numa_node(-1));
    EXPECT_EQ(unplaced.stats().numa_node, -1);
    EXPECT_EQ(unplaced.stats().pinned_workers, 0u);

    const zenith::Error e = error_from([] { (void)zenith::LoaderOptions().numa_node(-2); });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT) << e.what();
}

TEST(Placement, NearGpu) {
    const zenith::Error bad_address =
        error_from([] { (void)zenith::LoaderOptions().near_gpu(std::string("not a pci address")); });
    EXPECT_EQ(bad_address.code(), ZENITH_ERR_INVALID_ARGUMENT) << bad_address.what();

    // A GPU index far beyond any machine's: opening says there is no such GPU.
    const zenith::Error missing = error_from([] {
        zenith::Loader loader(data_path("basic.arrow"), in_order(1000).near_gpu(4096u));
    });
    EXPECT_EQ(missing.code(), ZENITH_ERR_INVALID_ARGUMENT) << missing.what();
    EXPECT_TRUE(zenith_test::contains(missing.what(), "GPU")) << missing.what();
}

TEST(Placement, PinMemory) {
    std::uint32_t gpus = 0;
    const bool has_gpu = zenith_gpu_count(&gpus, nullptr) == ZENITH_OK && gpus > 0;
    if (!has_gpu) {
        // Without a driver or device, enabling is a clear NO_DEVICE; disabling needs no driver.
        const zenith::Error e = error_from([] { (void)zenith::LoaderOptions().pin_memory(0); });
        EXPECT_EQ(e.code(), ZENITH_ERR_NO_DEVICE) << e.what();
        EXPECT_TRUE(zenith_test::contains(e.what(), "pin_memory needs CUDA device 0")) << e.what();
        (void)zenith::LoaderOptions().pin_memory(0, false);
        return;
    }
    // Shuffled batches land in pinned memory; the rows are those of a plain loader.
    zenith::Loader pinned(data_path("basic.arrow"), zenith::LoaderOptions().batch_size(1000).pin_memory(0));
    std::vector<std::int64_t> ids = all_ids(pinned);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, iota(kBasicRows));
}
