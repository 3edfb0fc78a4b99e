// test_formats.cpp — the formats users have through zenith.hpp: compressed CSV/TSV, the CSV
// delimiter, header and schema options, JSON lines, a list of paths, and an unsupported scheme.
#include "common.hpp"

#include <string>
#include <vector>

using zenith_test::contains;
using zenith_test::data_path;
using zenith_test::error_from;
using zenith_test::in_order;
using zenith_test::kBasicRows;
using zenith_test::read_epoch;

TEST(Formats, CompressedCsvTsvAndJsonLinesHoldEveryRowInOrder) {
    for (const char* name : {"formats/basic.csv.gz", "formats/basic.csv.zst", "formats/basic.tsv.gz",
                             "formats/basic.jsonl", "formats/basic.ndjson.zst"}) {
        zenith::Loader loader(data_path(name), in_order(1000));
        const auto epoch = read_epoch(loader);
        ASSERT_EQ(epoch.ids.size(), static_cast<std::size_t>(kBasicRows)) << name;
        for (std::size_t i = 0; i < epoch.ids.size(); i++) {
            ASSERT_EQ(epoch.ids[i], static_cast<std::int64_t>(i)) << name;
        }
    }
}

TEST(Formats, DelimiterHeaderAndSchemaOptions) {
    zenith::Loader piped(data_path("formats/pipes.csv"), in_order(1000).csv_delimiter('|'));
    EXPECT_EQ(read_epoch(piped).ids.size(), static_cast<std::size_t>(kBasicRows));

    // The schema of basic.csv (exported by a loader) names the columns of a file without header.
    zenith::Loader with_header(data_path("basic.csv"), in_order(1000));
    zenith::UniqueArrowSchema schema = with_header.schema();
    zenith::Loader bare(data_path("formats/noheader.csv"),
                        in_order(1000).csv_header(false).schema(schema.get()));
    const auto epoch = read_epoch(bare);  // ids_of reads the column named "id"
    ASSERT_EQ(epoch.ids.size(), static_cast<std::size_t>(kBasicRows));
    EXPECT_EQ(epoch.ids.back(), kBasicRows - 1);

    const zenith::Error e = error_from([] { zenith::LoaderOptions().csv_delimiter('\n'); });
    EXPECT_EQ(e.code(), ZENITH_ERR_INVALID_ARGUMENT);
}

TEST(Formats, AListOfPathsIsOneDatasetAndUnsupportedSchemesAreNamed) {
    const std::vector<std::string> paths{data_path("formats/basic.csv.gz"), data_path("basic.csv")};
    zenith::Loader both(paths, in_order(1000));
    EXPECT_EQ(read_epoch(both).ids.size(), static_cast<std::size_t>(2 * kBasicRows));

    const zenith::Error e = error_from([] { zenith::Loader("hdfs://namenode/train/"); });
    EXPECT_EQ(e.code(), ZENITH_ERR_UNSUPPORTED);
    EXPECT_TRUE(contains(e.what(), "\"hdfs\"")) << e.what();
}
