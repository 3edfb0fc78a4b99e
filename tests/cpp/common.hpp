// common.hpp — helpers the C++ binding tests share: data paths, the expected values of the
// generated datasets (every value is a function of the row id; tests/data/generate.py), and
// catching a zenith::Error.
#ifndef ZENITH_TESTS_CPP_COMMON_HPP
#define ZENITH_TESTS_CPP_COMMON_HPP

#include <gtest/gtest.h>
#include <zenith.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace zenith_test {

constexpr std::int64_t kBasicRows = 10000;  // rows in basic.arrow and its other formats
constexpr std::int64_t kEmbeddingWidth = 4;

/// `name` inside $ZENITH_TEST_DATA (default tests/data/generated, written by `make data`).
inline std::string data_path(const std::string& name) {
    const char* dir = std::getenv("ZENITH_TEST_DATA");
    return std::string(dir != nullptr && *dir != '\0' ? dir : "tests/data/generated") + "/" + name;
}

/// Options for reading basic.arrow in dataset order.
inline zenith::LoaderOptions in_order(std::size_t batch_size) {
    return zenith::LoaderOptions().batch_size(batch_size).shuffle(zenith::Shuffle::None);
}

/// The error `body` throws; a test failure (and code ZENITH_OK) when it throws none.
inline zenith::Error error_from(const std::function<void()>& body) {
    try {
        body();
    } catch (const zenith::Error& e) {
        return e;
    }
    ADD_FAILURE() << "expected a zenith::Error, none was thrown";
    return zenith::Error(ZENITH_OK, "no error");
}

inline bool contains(const char* text, const std::string& part) {
    return std::string(text).find(part) != std::string::npos;
}

/// The `id` column of a batch, through DLPack.
inline std::vector<std::int64_t> ids_of(const zenith::Batch& batch) {
    zenith::DLPackTensor ids = batch.column_dlpack("id");
    const auto* data = static_cast<const std::int64_t*>(ids->dl_tensor.data);
    return std::vector<std::int64_t>(data, data + ids->dl_tensor.shape[0]);
}

/// Every id an epoch delivers, in order, and the row count of each batch.
struct Epoch {
    std::vector<std::int64_t> ids;
    std::vector<std::size_t> batch_rows;
};

inline Epoch read_epoch(zenith::Loader& loader) {
    Epoch epoch;
    for (zenith::Batch& batch : loader) {
        std::vector<std::int64_t> ids = ids_of(batch);
        epoch.ids.insert(epoch.ids.end(), ids.begin(), ids.end());
        epoch.batch_rows.push_back(batch.num_rows());
    }
    return epoch;
}

/// Whether `ids` is a permutation of 0..n-1.
inline bool is_permutation_of_rows(std::vector<std::int64_t> ids, std::int64_t n) {
    if (static_cast<std::int64_t>(ids.size()) != n) return false;
    std::vector<bool> seen(static_cast<std::size_t>(n), false);
    for (std::int64_t id : ids) {
        if (id < 0 || id >= n || seen[static_cast<std::size_t>(id)]) return false;
        seen[static_cast<std::size_t>(id)] = true;
    }
    return true;
}

inline bool bit(const void* bitmap, std::int64_t index) {
    return (static_cast<const std::uint8_t*>(bitmap)[index / 8] >> (index % 8)) & 1;
}

/// Checks every value of an exported batch of basic.arrow (all six columns) against its id;
/// returns the number of mismatches.
inline std::int64_t verify_basic_array(const ArrowArray& batch) {
    if (batch.n_children != 6) return 1;
    const ArrowArray& id = *batch.children[0];
    const ArrowArray& label = *batch.children[1];
    const ArrowArray& value = *batch.children[2];
    const ArrowArray& name = *batch.children[3];
    const ArrowArray& flag = *batch.children[4];
    const ArrowArray& emb = *batch.children[5];
    const ArrowArray& emb_values = *emb.children[0];
    const auto* ids = static_cast<const std::int64_t*>(id.buffers[1]) + id.offset;
    const auto* labels = static_cast<const std::int32_t*>(label.buffers[1]) + label.offset;
    const auto* values = static_cast<const double*>(value.buffers[1]) + value.offset;
    const auto* name_offsets = static_cast<const std::int32_t*>(name.buffers[1]);
    const auto* name_data = static_cast<const char*>(name.buffers[2]);
    const auto* floats = static_cast<const float*>(emb_values.buffers[1]) + emb_values.offset;
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < batch.length; i++) {
        const std::int64_t row = ids[i];
        bad += labels[i] != static_cast<std::int32_t>(row % 10);
        bad += values[i] != static_cast<double>(row) * 0.5;
        bad += bit(flag.buffers[1], flag.offset + i) != (row % 3 == 0);
        const std::int64_t n = name.offset + i;
        const bool valid = name.buffers[0] == nullptr || bit(name.buffers[0], n);
        if (row % 7 == 3) {
            bad += valid;
        } else {
            const std::string expected = "row-" + std::to_string(row);
            const std::string got(name_data + name_offsets[n],
                                  static_cast<std::size_t>(name_offsets[n + 1] - name_offsets[n]));
            bad += !valid || got != expected;
        }
        for (std::int64_t k = 0; k < kEmbeddingWidth; k++) {
            const float got = floats[(emb.offset + i) * kEmbeddingWidth + k];
            bad += got != static_cast<float>(row) + static_cast<float>(k) / kEmbeddingWidth;
        }
    }
    return bad;
}

}  // namespace zenith_test

#endif  // ZENITH_TESTS_CPP_COMMON_HPP
