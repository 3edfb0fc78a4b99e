// test_exports.cpp — what leaves the library: the schema, Arrow C Data exports of a batch (which
// outlive the batch and the loader, and can be handed on), DLPack tensors (shape, dtype,
// strides, flags, values, lifetime), and the Arrow C stream of an epoch.
#include "common.hpp"

#include <cstring>
#include <string>
#include <vector>

using zenith_test::contains;
using zenith_test::data_path;
using zenith_test::error_from;
using zenith_test::ids_of;
using zenith_test::in_order;
using zenith_test::kBasicRows;
using zenith_test::kEmbeddingWidth;
using zenith_test::verify_basic_array;

namespace {

const char* const kNames[] = {"id", "label", "value", "name", "flag", "embedding"};
const char* const kFormats[] = {"l", "i", "g", "u", "b", "+w:4"};

void expect_basic_schema(const ArrowSchema& schema) {
    EXPECT_STREQ(schema.format, "+s");
    ASSERT_EQ(schema.n_children, 6);
    for (int i = 0; i < 6; i++) {
        EXPECT_STREQ(schema.children[i]->name, kNames[i]);
        EXPECT_STREQ(schema.children[i]->format, kFormats[i]);
    }
    EXPECT_STREQ(schema.children[5]->children[0]->format, "f");
}

/// The first batch of basic.arrow in dataset order.
zenith::Batch first_batch(std::size_t batch_size) {
    zenith::Loader loader(data_path("basic.arrow"), in_order(batch_size));
    std::optional<zenith::Batch> batch = loader.next();
    if (!batch) throw std::runtime_error("basic.arrow: no batch");
    return std::move(*batch);  // outlives the loader
}

}  // namespace

TEST(Schema, DescribesTheColumns) {
    zenith::Loader loader(data_path("basic.arrow"));
    const zenith::UniqueArrowSchema schema = loader.schema();
    ASSERT_TRUE(schema);
    expect_basic_schema(*schema);
}

TEST(ArrowExport, OutlivesTheBatchAndTheLoader) {
    zenith::ArrowBatch exported;
    {
        zenith::Loader loader(data_path("basic.arrow"), in_order(3000));
        (void)loader.next();
        zenith::Batch second = *loader.next();
        exported = second.export_arrow();
    }  // batch and loader destroyed; the export keeps the mapped file alive
    ASSERT_TRUE(exported.array);
    ASSERT_TRUE(exported.schema);
    EXPECT_EQ(exported.array->length, 3000);
    expect_basic_schema(*exported.schema);
    EXPECT_EQ(verify_basic_array(*exported.array), 0);
    const ArrowArray& id = *exported.array->children[0];
    EXPECT_EQ(static_cast<const std::int64_t*>(id.buffers[1])[id.offset], 3000);
}

TEST(ArrowExport, ABatchExportsAsOftenAsAsked) {
    zenith::Batch batch = first_batch(500);
    zenith::ArrowBatch a = batch.export_arrow();
    zenith::UniqueArrowArray b = batch.export_array();  // array only
    batch = zenith::Batch();                            // frees the batch
    EXPECT_EQ(a.array->length, 500);
    EXPECT_EQ(b->length, 500);
    EXPECT_EQ(verify_basic_array(*a.array), 0);
    EXPECT_EQ(verify_basic_array(*b), 0);
}

TEST(ArrowExport, ReleaseHandsTheStructToAnotherOwner) {
    zenith::ArrowBatch exported = first_batch(100).export_arrow();
    // What an importer (Arrow C++, nanoarrow, a PyCapsule) receives: the raw structs, now its
    // own to release.
    ArrowArray array = exported.array.release();
    ArrowSchema schema = exported.schema.release();
    EXPECT_FALSE(exported.array);
    EXPECT_FALSE(exported.schema);
    ASSERT_NE(array.release, nullptr);
    EXPECT_EQ(array.length, 100);
    EXPECT_EQ(verify_basic_array(array), 0);
    // ... and an importer that moves from a pointer marks it released: adopting it again.
    zenith::UniqueArrowArray adopted(&array);
    EXPECT_EQ(array.release, nullptr);
    EXPECT_EQ(adopted->length, 100);
    schema.release(&schema);
    EXPECT_EQ(schema.release, nullptr);
}  // `adopted` and the emptied wrappers release what they still own, once (valgrind checks)

TEST(ArrowExport, ResetReleasesOnce) {
    zenith::UniqueArrowArray array = first_batch(100).export_array();
    array.reset();
    EXPECT_FALSE(array);
    array.reset();  // idempotent
    EXPECT_FALSE(array);
}

TEST(DLPack, Int64ColumnIsAZeroCopyVector) {
    zenith::Batch batch = first_batch(768);
    const zenith::DLPackTensor t = batch.column_dlpack("id");
    ASSERT_NE(t.get(), nullptr);
    EXPECT_EQ(t->version.major, 1u);
    EXPECT_EQ(t->dl_tensor.device.device_type, kDLCPU);
    EXPECT_EQ(t->dl_tensor.device.device_id, 0);
    ASSERT_EQ(t->dl_tensor.ndim, 1);
    EXPECT_EQ(t->dl_tensor.shape[0], 768);
    EXPECT_EQ(t->dl_tensor.strides[0], 1);
    EXPECT_EQ(t->dl_tensor.byte_offset, 0u);
    EXPECT_EQ(t->dl_tensor.dtype.code, kDLInt);
    EXPECT_EQ(t->dl_tensor.dtype.bits, 64);
    EXPECT_EQ(t->dl_tensor.dtype.lanes, 1);
    EXPECT_TRUE(t->flags & DLPACK_FLAG_BITMASK_READ_ONLY);
    EXPECT_FALSE(t->flags & DLPACK_FLAG_BITMASK_IS_COPIED);
    const auto* ids = static_cast<const std::int64_t*>(t->dl_tensor.data);
    for (std::int64_t i = 0; i < 768; i++) ASSERT_EQ(ids[i], i);
}

TEST(DLPack, NumberColumnsHaveTheirTypes) {
    zenith::Batch batch = first_batch(300);
    const zenith::DLPackTensor label = batch.column_dlpack("label");
    EXPECT_EQ(label->dl_tensor.dtype.code, kDLInt);
    EXPECT_EQ(label->dl_tensor.dtype.bits, 32);
    const zenith::DLPackTensor value = batch.column_dlpack("value");
    EXPECT_EQ(value->dl_tensor.dtype.code, kDLFloat);
    EXPECT_EQ(value->dl_tensor.dtype.bits, 64);
    const auto* labels = static_cast<const std::int32_t*>(label->dl_tensor.data);
    const auto* values = static_cast<const double*>(value->dl_tensor.data);
    for (std::int64_t i = 0; i < 300; i++) {
        ASSERT_EQ(labels[i], i % 10);
        ASSERT_EQ(values[i], static_cast<double>(i) * 0.5);
    }
}

TEST(DLPack, FixedSizeListIsAMatrix) {
    zenith::Batch batch = first_batch(256);
    const zenith::DLPackTensor t = batch.column_dlpack("embedding");
    ASSERT_EQ(t->dl_tensor.ndim, 2);
    EXPECT_EQ(t->dl_tensor.shape[0], 256);
    EXPECT_EQ(t->dl_tensor.shape[1], kEmbeddingWidth);
    EXPECT_EQ(t->dl_tensor.strides[0], kEmbeddingWidth);
    EXPECT_EQ(t->dl_tensor.strides[1], 1);
    EXPECT_EQ(t->dl_tensor.dtype.code, kDLFloat);
    EXPECT_EQ(t->dl_tensor.dtype.bits, 32);
    const auto* x = static_cast<const float*>(t->dl_tensor.data);
    for (std::int64_t row = 0; row < 256; row++) {
        for (std::int64_t k = 0; k < kEmbeddingWidth; k++) {
            ASSERT_EQ(x[row * kEmbeddingWidth + k],
                      static_cast<float>(row) + static_cast<float>(k) / kEmbeddingWidth);
        }
    }
}

TEST(DLPack, BoolsAreCopiedOneBytePerValue) {
    zenith::Batch batch = first_batch(100);
    const zenith::DLPackTensor t = batch.column_dlpack("flag");
    EXPECT_EQ(t->dl_tensor.dtype.code, kDLBool);
    EXPECT_EQ(t->dl_tensor.dtype.bits, 8);
    EXPECT_TRUE(t->flags & DLPACK_FLAG_BITMASK_IS_COPIED);
    const auto* flags = static_cast<const std::uint8_t*>(t->dl_tensor.data);
    for (std::int64_t i = 0; i < 100; i++) ASSERT_EQ(flags[i] != 0, i % 3 == 0);
}

TEST(DLPack, ByIndexMatchesByName) {
    zenith::Batch batch = first_batch(64);
    const zenith::DLPackTensor by_index = batch.column_dlpack_at(5);
    const zenith::DLPackTensor by_name = batch.column_dlpack("embedding");
    ASSERT_EQ(by_index->dl_tensor.ndim, 2);
    EXPECT_EQ(std::memcmp(by_index->dl_tensor.data, by_name->dl_tensor.data,
                          64 * kEmbeddingWidth * sizeof(float)),
              0);
}

TEST(DLPack, ColumnsWithoutATensorFormAreErrors) {
    zenith::Batch batch = first_batch(64);
    zenith::Error e = error_from([&] { (void)batch.column_dlpack("name"); });  // utf8
    EXPECT_EQ(e.code(), ZENITH_ERR_UNSUPPORTED);
    EXPECT_TRUE(contains(e.what(), "name")) << e.what();
    e = error_from([&] { (void)batch.column_dlpack("nope"); });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(e.what(), "nope")) << e.what();
    e = error_from([&] { (void)batch.column_dlpack_at(6); });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT);
    e = error_from([&] { (void)batch.column_dlpack(std::string("id\0x", 4)); });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT);
}

TEST(DLPack, TensorOutlivesTheBatchAndTheLoader) {
    zenith::DLPackTensor ids;
    zenith::DLPackTensor embedding;
    {
        zenith::Loader loader(data_path("basic.arrow"), in_order(1000));
        (void)loader.next();
        zenith::Batch batch = *loader.next();
        ids = batch.column_dlpack("id");
        embedding = batch.column_dlpack("embedding");
    }
    const auto* id = static_cast<const std::int64_t*>(ids->dl_tensor.data);
    const auto* x = static_cast<const float*>(embedding->dl_tensor.data);
    for (std::int64_t i = 0; i < 1000; i++) {
        ASSERT_EQ(id[i], 1000 + i);
        ASSERT_EQ(x[i * kEmbeddingWidth], static_cast<float>(1000 + i));
    }
}

TEST(DLPack, ReleaseHandsTheTensorToAConsumer) {
    zenith::DLPackTensor t = first_batch(10).column_dlpack("value");
    DLManagedTensorVersioned* raw = t.release();  // e.g. to at::fromDLPack, which calls deleter
    EXPECT_EQ(t.get(), nullptr);
    ASSERT_NE(raw, nullptr);
    EXPECT_EQ(raw->dl_tensor.shape[0], 10);
    raw->deleter(raw);
}

TEST(ArrowStream, YieldsTheRestOfTheEpochAndOutlivesTheLoader) {
    zenith::UniqueArrowArrayStream stream;
    std::int64_t expected_id = 0;
    {
        zenith::Loader loader(data_path("basic.arrow"), in_order(1024));
        zenith::Batch first = *loader.next();
        expected_id = static_cast<std::int64_t>(first.num_rows());
        stream = loader.export_stream();  // continues where the loader stands
    }  // and keeps going without the loader
    ASSERT_TRUE(stream);
    zenith::UniqueArrowSchema schema;
    ASSERT_EQ(stream->get_schema(stream.get(), schema.get()), 0);
    expect_basic_schema(*schema);
    std::int64_t batches = 0;
    for (;;) {
        zenith::UniqueArrowArray array;
        ASSERT_EQ(stream->get_next(stream.get(), array.get()), 0)
            << stream->get_last_error(stream.get());
        if (!array) break;  // a released array ends the stream
        batches++;
        EXPECT_EQ(verify_basic_array(*array), 0);
        const ArrowArray& id = *array->children[0];
        EXPECT_EQ(static_cast<const std::int64_t*>(id.buffers[1])[id.offset], expected_id);
        expected_id += array->length;
    }
    EXPECT_EQ(batches, 9);  // 10 batches, the first taken by next()
    EXPECT_EQ(expected_id, kBasicRows);
}
