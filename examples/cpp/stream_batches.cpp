// stream_batches.cpp — one shuffled epoch of a dataset through zenith.hpp, the way a C++ trainer
// would read it: range-for over batches, a column as a DLPack tensor, errors as exceptions.
//
//   c++ -std=c++17 stream_batches.cpp $(pkg-config --cflags --libs zenith) -o stream_batches
//   ./stream_batches data/ 1024 embedding     # path, batch size, a column to export (optional)
//
// The path is an Arrow IPC / Parquet / CSV file, a directory of shards or a glob.
#include <zenith.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " <path> [batch_size] [column]\n";
        return EXIT_FAILURE;
    }
    const std::string path = argv[1];
    const std::size_t batch_size =  // 0 (or garbage) makes LoaderOptions::batch_size throw
        argc > 2 ? std::strtoull(argv[2], nullptr, 10) : ZENITH_DEFAULT_BATCH_SIZE;
    const std::string column = argc > 3 ? argv[3] : "";

    try {
        zenith::Loader loader(path, zenith::LoaderOptions()
                                        .batch_size(batch_size)
                                        .shuffle(zenith::Shuffle::Global)
                                        .seed(42)
                                        .num_workers(2));
        std::cout << "libzenith " << zenith::version() << ": " << path << ", "
                  << loader.num_batches() << " batches per epoch\n";

        std::size_t rows = 0;
        for (zenith::Batch& batch : loader) {  // the epoch; loader.set_epoch(1) starts the next
            rows += batch.num_rows();
            if (!column.empty()) {
                // Zero copy where the data allows; outlives the batch. Hand tensor.release() to a
                // framework (at::fromDLPack, ...), which then calls its deleter.
                zenith::DLPackTensor tensor = batch.column_dlpack(column);
                if (rows == batch.num_rows()) {
                    const DLTensor& t = tensor->dl_tensor;
                    std::cout << column << ": dtype code " << int(t.dtype.code) << ", "
                              << int(t.dtype.bits) << " bits, shape [" << t.shape[0];
                    for (int d = 1; d < t.ndim; d++) std::cout << ", " << t.shape[d];
                    std::cout << "]\n";
                }
            }
            // Or the whole batch through the Arrow C Data Interface, e.g. into Arrow C++:
            //   zenith::ArrowBatch a = batch.export_arrow();
            //   arrow::ImportRecordBatch(a.array.get(), a.schema.get());
        }

        const zenith_stats stats = loader.stats();
        std::cout << rows << " rows in " << stats.batches << " batches; first batch after "
                  << stats.time_to_first_batch_ns / 1000000.0 << " ms\n";
        return EXIT_SUCCESS;
    } catch (const zenith::Error& e) {  // e.g. ZENITH_ERR_NOT_FOUND, ZENITH_ERR_FORMAT
        std::cerr << "zenith error " << e.code() << " (" << e.status_str() << "): " << e.what()
                  << "\n";
        return EXIT_FAILURE;
    }
}
