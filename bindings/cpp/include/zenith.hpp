/*
 * zenith.hpp — C++17 bindings for libzenith: a header-only skin over the C API in <zenith.h>.
 *
 *   zenith::Loader loader("train/", zenith::LoaderOptions().batch_size(1024).seed(42));
 *   for (zenith::Batch& batch : loader) {                       // one epoch
 *       zenith::DLPackTensor x = batch.column_dlpack("features"); // or batch.export_arrow()
 *   }
 *
 * Ownership: every object owns its C handle or C struct exactly once. Handles (LoaderOptions,
 * Loader, Batch) and exports (UniqueArrowArray/Schema/ArrayStream, DLPackTensor) are move-only;
 * a moved-from object is empty, its destructor does nothing, and using it throws zenith::Error
 * with ZENITH_ERR_NULL_ARGUMENT. Exports stay valid after the Batch and the Loader they came
 * from are destroyed.
 *
 * Errors: every failing call throws zenith::Error (a std::runtime_error) carrying the C status
 * code (ZENITH_ERR_*) and the library's message. ZENITH_DONE is not an error: Loader::next()
 * returns an empty optional at the end of an epoch.
 *
 * Thread safety is the C API's: a Loader is used by one thread at a time (stats() and
 * num_batches() may be called from any thread); a Batch may be read from several threads.
 *
 * Link with libzenith as for C: pkg-config `zenith`, or CMake find_package(Zenith) and
 * Zenith::zenith. Needs C++17.
 */
#ifndef ZENITH_HPP
#define ZENITH_HPP

#if __cplusplus < 201703L && (!defined(_MSVC_LANG) || _MSVC_LANG < 201703L)
#error "zenith.hpp needs C++17 or newer"
#endif

#include <zenith.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace zenith {

// ---- Version -----------------------------------------------------------------------------------

/// The version of the library loaded at run time, e.g. "0.1.0" (static storage).
inline const char* version() noexcept { return zenith_version(); }

/// The run-time library version as MAJOR * 10000 + MINOR * 100 + PATCH; compare with
/// ZENITH_VERSION_NUMBER, the version of the header this program was compiled with.
inline std::uint32_t version_number() noexcept { return zenith_version_number(); }

// ---- Errors ------------------------------------------------------------------------------------

/// The one exception type: a failed call's status code (a negative ZENITH_ERR_* value) and the
/// library's message (what()).
class Error : public std::runtime_error {
public:
    Error(zenith_status code, const std::string& message)
        : std::runtime_error(message), code_(code) {}

    /// The status code: ZENITH_ERR_NOT_FOUND, ZENITH_ERR_FORMAT, ZENITH_ERR_INVALID_ARGUMENT, ...
    zenith_status code() const noexcept { return code_; }

    /// A static description of code() ("not found", ...).
    const char* status_str() const noexcept { return zenith_status_str(code_); }

private:
    zenith_status code_;
};

/// Frees a zenith_error (NULL is fine).
struct ErrorDeleter {
    void operator()(zenith_error* err) const noexcept { zenith_error_free(err); }
};

/// Turns a C call's result into C++: returns `status` when it is ZENITH_OK or ZENITH_DONE,
/// throws zenith::Error when it is negative. Either way it frees `err` and sets it to NULL.
///
///     zenith_error* err = nullptr;
///     zenith::check(zenith_loader_set_epoch(raw, 1, &err), err);
///
/// `err` is taken by reference, so it is read only after the call in the first argument has
/// filled it, whatever order the compiler evaluates the arguments in.
inline zenith_status check(zenith_status status, zenith_error*& err) {
    std::unique_ptr<zenith_error, ErrorDeleter> owned(std::exchange(err, nullptr));
    if (status >= 0) {
        return status;
    }
    const char* message = owned ? zenith_error_message(owned.get()) : "";
    throw Error(status, *message != '\0' ? message : zenith_status_str(status));
}

/// check() for the few C functions without an error parameter (the message is
/// zenith_status_str(status)).
inline zenith_status check(zenith_status status) {
    zenith_error* none = nullptr;
    return check(status, none);
}

namespace detail {

/// Returns `handle`, or throws ZENITH_ERR_NULL_ARGUMENT naming the empty object used.
template <class T>
T* require(T* handle, const char* what) {
    if (handle == nullptr) {
        throw Error(ZENITH_ERR_NULL_ARGUMENT,
                    std::string(what) + ": the object is empty (moved from, released or closed)");
    }
    return handle;
}

/// A std::string as a C string; one with a NUL byte inside would be silently cut short there,
/// so it is an error.
inline const char* c_str(const std::string& text, const char* what) {
    if (text.find('\0') != std::string::npos) {
        throw Error(ZENITH_ERR_INVALID_ARGUMENT, std::string(what) + ": contains a NUL byte");
    }
    return text.c_str();
}

}  // namespace detail

// ---- Arrow C Data Interface and DLPack exports -------------------------------------------------

/// Owns one Arrow C Data / C Stream Interface struct (ArrowArray, ArrowSchema or
/// ArrowArrayStream) held by value, and calls its `release` callback when destroyed. Move-only;
/// moving copies the struct and marks the source released, as the Arrow spec allows.
///
/// To hand the struct to another library (Arrow C++ `arrow::ImportRecordBatch`, nanoarrow,
/// DuckDB, a PyCapsule ...): pass get() to an importer that moves from it (it marks the struct
/// released, so this wrapper then does nothing), or take it out with release() and pass that on.
template <class T>
class UniqueArrow {
public:
    /// An empty (released) struct.
    UniqueArrow() noexcept = default;

    /// Takes ownership of `*source` by moving it: `source` is marked released.
    explicit UniqueArrow(T* source) noexcept : data_(*source) { source->release = nullptr; }

    UniqueArrow(UniqueArrow&& other) noexcept : data_(std::exchange(other.data_, T{})) {}

    UniqueArrow& operator=(UniqueArrow&& other) noexcept {
        if (this != &other) {
            reset();
            data_ = std::exchange(other.data_, T{});
        }
        return *this;
    }

    UniqueArrow(const UniqueArrow&) = delete;
    UniqueArrow& operator=(const UniqueArrow&) = delete;

    ~UniqueArrow() { reset(); }

    /// Whether this holds a live (unreleased) struct.
    explicit operator bool() const noexcept { return data_.release != nullptr; }

    /// The struct. On an empty wrapper this is storage a C producer may fill.
    T* get() noexcept { return &data_; }
    const T* get() const noexcept { return &data_; }
    T* operator->() noexcept { return &data_; }
    const T* operator->() const noexcept { return &data_; }
    T& operator*() noexcept { return data_; }
    const T& operator*() const noexcept { return data_; }

    /// Gives up ownership: returns the struct (the caller must call its `release` callback or
    /// move it into a consumer that will) and leaves this wrapper empty.
    [[nodiscard]] T release() noexcept { return std::exchange(data_, T{}); }

    /// Releases the struct now (idempotent).
    void reset() noexcept {
        if (data_.release != nullptr) {
            data_.release(&data_);
        }
        data_ = T{};
    }

private:
    T data_{};
};

/// An owned Arrow C Data Interface array (for a batch: a struct array, one child per column).
using UniqueArrowArray = UniqueArrow<ArrowArray>;
/// An owned Arrow C Data Interface schema (for a batch: format "+s", one child per column).
using UniqueArrowSchema = UniqueArrow<ArrowSchema>;
/// An owned Arrow C Stream Interface stream.
using UniqueArrowArrayStream = UniqueArrow<ArrowArrayStream>;

/// A batch exported through the Arrow C Data Interface: its array and its schema.
struct ArrowBatch {
    UniqueArrowArray array;
    UniqueArrowSchema schema;
};

/// Calls a DLPack tensor's own deleter (NULL is fine).
struct DLPackDeleter {
    void operator()(DLManagedTensorVersioned* tensor) const noexcept {
        if (tensor != nullptr && tensor->deleter != nullptr) {
            tensor->deleter(tensor);
        }
    }
};

/// An owned DLPack 1.x tensor. To hand it to a framework that takes a DLManagedTensorVersioned*
/// and calls its deleter itself, pass release().
using DLPackTensor = std::unique_ptr<DLManagedTensorVersioned, DLPackDeleter>;

// ---- Options -----------------------------------------------------------------------------------

/// Shuffle modes (see zenith_loader_options_set_shuffle).
enum class Shuffle : zenith_shuffle {
    /// Rows in dataset order (zero-copy slices of memory-mapped files where possible).
    None = ZENITH_SHUFFLE_NONE,
    /// One exact permutation of all rows per epoch; over the memory budget, opening throws
    /// ZENITH_ERR_OUT_OF_MEMORY.
    Global = ZENITH_SHUFFLE_GLOBAL,
    /// Chunks shuffled, then rows within windows that fit the memory budget.
    Block = ZENITH_SHUFFLE_BLOCK,
    /// Global, or Block when the decoded data exceeds the memory budget (the default;
    /// Loader::stats().shuffle_mode says which runs).
    Auto = ZENITH_SHUFFLE_AUTO,
};

/// How a Loader reads files (see zenith_loader_options_set_io_backend).
enum class IoBackend : zenith_io_backend {
    /// Memory-mapped files (the default): zero-copy slices of Arrow IPC files.
    Mmap = ZENITH_IO_MMAP,
    /// io_uring: the byte ranges of a Parquet row group in one batched submission; pread where
    /// io_uring is unavailable (Loader::io_fallback_reason() says why).
    IoUring = ZENITH_IO_URING,
    /// pread(2).
    Pread = ZENITH_IO_PREAD,
};

class Stage;

struct LoaderOptionsDeleter {
    void operator()(zenith_loader_options* opts) const noexcept {
        zenith_loader_options_free(opts);
    }
};

/// Options for opening a Loader, starting from the library's defaults (see
/// zenith_loader_options_new). Setters chain and throw zenith::Error on a bad value (the options
/// are then unchanged):
///
///     auto opts = zenith::LoaderOptions().batch_size(256).shuffle(zenith::Shuffle::None);
///
/// Move-only. A Loader copies what it needs: the options may be changed or destroyed after.
class LoaderOptions {
public:
    LoaderOptions() {
        zenith_loader_options* raw = nullptr;
        check(zenith_loader_options_new(&raw));
        handle_.reset(raw);
    }

    /// Rows per batch (> 0); every batch has this many rows except the last of an epoch.
    LoaderOptions& batch_size(std::size_t rows) & {
        return set("batch_size", zenith_loader_options_set_batch_size, rows);
    }
    LoaderOptions&& batch_size(std::size_t rows) && { return std::move(batch_size(rows)); }

    /// How each epoch orders rows (default Shuffle::Auto).
    LoaderOptions& shuffle(Shuffle mode) & {
        return set("shuffle", zenith_loader_options_set_shuffle,
                   static_cast<zenith_shuffle>(mode));
    }
    LoaderOptions&& shuffle(Shuffle mode) && { return std::move(shuffle(mode)); }

    /// The shuffle seed (default 0).
    LoaderOptions& seed(std::uint64_t value) & {
        return set("seed", zenith_loader_options_set_seed, value);
    }
    LoaderOptions&& seed(std::uint64_t value) && { return std::move(seed(value)); }

    /// Drops the last batch of each epoch when it is short (default: kept).
    LoaderOptions& drop_last(bool drop = true) & {
        return set("drop_last", zenith_loader_options_set_drop_last, drop);
    }
    LoaderOptions&& drop_last(bool drop = true) && { return std::move(drop_last(drop)); }

    /// Worker threads building batches ahead (0: the consuming thread builds them; at most 256).
    /// Changes speed only, never content or order.
    LoaderOptions& num_workers(std::size_t workers) & {
        return set("num_workers", zenith_loader_options_set_num_workers, workers);
    }
    LoaderOptions&& num_workers(std::size_t workers) && {
        return std::move(num_workers(workers));
    }

    /// Batches workers may build ahead of the consumer (> 0; default twice the workers).
    LoaderOptions& prefetch(std::size_t batches) & {
        return set("prefetch", zenith_loader_options_set_prefetch, batches);
    }
    LoaderOptions&& prefetch(std::size_t batches) && { return std::move(prefetch(batches)); }

    /// Makes the loader rank `rank` of `world_size` (rank < world_size): an equal-sized share of
    /// each epoch (see shard_drop_remainder). Default: RANK/WORLD_SIZE, SLURM_PROCID/SLURM_NTASKS,
    /// else 0 of 1; Loader::stats() reports rank, world_size and shard_source.
    LoaderOptions& shard(std::uint32_t rank, std::uint32_t world_size) & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_shard(raw("shard"), rank, world_size, &err), err);
        return *this;
    }
    LoaderOptions&& shard(std::uint32_t rank, std::uint32_t world_size) && {
        return std::move(shard(rank, world_size));
    }

    /// No sharding, whatever the environment says: the loader reads every row (rank 0 of 1).
    LoaderOptions& shard_none() & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_shard_none(raw("shard_none"), &err), err);
        return *this;
    }
    LoaderOptions&& shard_none() && { return std::move(shard_none()); }

    /// Drops the rows that do not divide evenly across ranks (floor(rows / world) each) instead
    /// of padding by wrapping around like torch's DistributedSampler (ceil(rows / world) each,
    /// the default). Either way every rank gets the same number of batches.
    LoaderOptions& shard_drop_remainder(bool drop = true) & {
        return set("shard_drop_remainder", zenith_loader_options_set_shard_drop_remainder, drop);
    }
    LoaderOptions&& shard_drop_remainder(bool drop = true) && {
        return std::move(shard_drop_remainder(drop));
    }

    /// Keeps only these columns, in this order (unique names; checked against the dataset when
    /// the Loader opens). An empty list throws ZENITH_ERR_INVALID_ARGUMENT; all_columns() reads
    /// every column again.
    LoaderOptions& columns(const std::vector<std::string>& names) & {
        std::vector<const char*> pointers;
        pointers.reserve(names.size());
        for (const std::string& name : names) {
            pointers.push_back(detail::c_str(name, "zenith::LoaderOptions::columns"));
        }
        // A non-NULL pointer even for no names: (NULL, 0) would mean every column.
        static const char* const no_names[1] = {nullptr};
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_columns(raw("columns"),
                                                pointers.empty() ? no_names : pointers.data(),
                                                pointers.size(), &err),
              err);
        return *this;
    }
    LoaderOptions&& columns(const std::vector<std::string>& names) && {
        return std::move(columns(names));
    }

    /// Reads every column (the default), undoing columns().
    LoaderOptions& all_columns() & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_columns(raw("all_columns"), nullptr, 0, &err), err);
        return *this;
    }
    LoaderOptions&& all_columns() && { return std::move(all_columns()); }

    /// Caps the bytes of decoded data held to shuffle (0: half the memory available at open,
    /// divided by the ranks on this node: LOCAL_WORLD_SIZE, else SLURM_NTASKS_PER_NODE).
    LoaderOptions& memory_budget(std::uint64_t bytes) & {
        return set("memory_budget", zenith_loader_options_set_memory_budget, bytes);
    }
    LoaderOptions&& memory_budget(std::uint64_t bytes) && {
        return std::move(memory_budget(bytes));
    }

    /// The CSV field delimiter, one byte ('\0': a tab for .tsv files, a comma otherwise).
    LoaderOptions& csv_delimiter(char delimiter) & {
        return set("csv_delimiter", zenith_loader_options_set_csv_delimiter,
                   static_cast<std::uint8_t>(delimiter));
    }
    LoaderOptions&& csv_delimiter(char delimiter) && {
        return std::move(csv_delimiter(delimiter));
    }

    /// Whether CSV files start with a header row (the default); without one, columns are named
    /// by schema(), else f0, f1, ...
    LoaderOptions& csv_header(bool header) & {
        return set("csv_header", zenith_loader_options_set_csv_header, header);
    }
    LoaderOptions&& csv_header(bool header) && { return std::move(csv_header(header)); }

    /// Parses CSV and JSON lines files with `schema` (an Arrow C struct schema, "+s"; only read:
    /// the caller keeps and releases it) instead of inferring one; nullptr restores inference.
    LoaderOptions& schema(const ArrowSchema* schema) & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_schema(raw("schema"), schema, &err), err);
        return *this;
    }
    LoaderOptions&& schema(const ArrowSchema* schema) && { return std::move(this->schema(schema)); }

    /// Resumes from a token from Loader::save_state(): the Loader delivers exactly the batches
    /// not yet delivered. Open it with the same dataset and the same order-deciding options
    /// (seed, batch size, shuffle, drop_last, shard, columns), else opening throws.
    LoaderOptions& resume_state(const std::vector<std::uint8_t>& token) & {
        // An empty token is invalid, not a NULL pointer: say so with the library's own words.
        static const std::uint8_t empty = 0;
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_resume_state(
                  raw("resume_state"), token.empty() ? &empty : token.data(), token.size(), &err),
              err);
        return *this;
    }
    LoaderOptions&& resume_state(const std::vector<std::uint8_t>& token) && {
        return std::move(resume_state(token));
    }

    // -- placement and I/O: where and how bytes are read, never which rows in which order --

    /// How files are read (default IoBackend::Mmap; ZENITH_IO_BACKEND in the environment
    /// overrides it). Loader::stats().io_backend says which runs.
    LoaderOptions& io_backend(IoBackend backend) & {
        return set("io_backend", zenith_loader_options_set_io_backend,
                   static_cast<zenith_io_backend>(backend));
    }
    LoaderOptions&& io_backend(IoBackend backend) && { return std::move(io_backend(backend)); }

    /// Reads with O_DIRECT (bypassing the page cache) with IoBackend::Pread or IoUring; file
    /// systems that refuse it are read through the page cache (Loader::io_fallback_reason()).
    LoaderOptions& io_direct(bool direct) & {
        return set("io_direct", zenith_loader_options_set_io_direct, direct);
    }
    LoaderOptions&& io_direct(bool direct) && { return std::move(io_direct(direct)); }

    /// Runs the workers on NUMA node `node` and allocates batches there (-1: no placement).
    /// Replaces a near_gpu() set before.
    LoaderOptions& numa_node(std::int32_t node) & {
        return set("numa_node", zenith_loader_options_set_numa_node, node);
    }
    LoaderOptions&& numa_node(std::int32_t node) && { return std::move(numa_node(node)); }

    /// Places the loader on the NUMA node of GPU `gpu_index` (its index on the PCI bus); opening
    /// throws when there is no such GPU. Replaces a numa_node() set before.
    LoaderOptions& near_gpu(std::uint32_t gpu_index) & {
        return set("near_gpu", zenith_loader_options_set_near_gpu_index, gpu_index);
    }
    LoaderOptions&& near_gpu(std::uint32_t gpu_index) && { return std::move(near_gpu(gpu_index)); }

    /// Places the loader on the NUMA node of the GPU at PCI address `pci_address`
    /// ("0000:3b:00.0"); throws for text that is not a PCI address.
    LoaderOptions& near_gpu(const std::string& pci_address) & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_near_gpu_pci(
                  raw("near_gpu"), detail::c_str(pci_address, "zenith::LoaderOptions::near_gpu"),
                  &err),
              err);
        return *this;
    }
    LoaderOptions&& near_gpu(const std::string& pci_address) && {
        return std::move(near_gpu(pci_address));
    }

    /// Appends a stage (a Stage::wasm plugin or a Stage::native callable, as an Engine runs
    /// them) that the loader's workers run on each batch before delivery, in the order added;
    /// the options share it. Order, sharding and resume are unchanged. A batch a stage fails
    /// throws zenith::Error with ZENITH_ERR_EVENT_FAILED (the message names the stage, the batch
    /// and the reason) from the call that would have delivered it; the next call builds it again.
    LoaderOptions& stage(const Stage& s) &;
    LoaderOptions&& stage(const Stage& s) && { return std::move(stage(s)); }

    /// Delivers batches into the memory of CUDA device `ordinal` (tensor columns through the
    /// loader's pinned slot ring; export them with zenith_batch_column_dlpack_stream). Opening
    /// throws zenith::Error with ZENITH_ERR_NO_DEVICE when there is no such device (no driver,
    /// no device, no such ordinal).
    LoaderOptions& device_cuda(std::uint32_t ordinal) & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_device(raw("device_cuda"), ZENITH_DEVICE_CUDA, ordinal, &err),
              err);
        return *this;
    }
    LoaderOptions&& device_cuda(std::uint32_t ordinal) && { return std::move(device_cuda(ordinal)); }

    /// Staging slots of the device ring (at least 3; after device_cuda()).
    LoaderOptions& device_slots(std::size_t slots) & {
        return set("device_slots", zenith_loader_options_set_device_slots, slots);
    }
    LoaderOptions&& device_slots(std::size_t slots) && { return std::move(device_slots(slots)); }

    /// Batches land in pinned (page-locked) host memory of CUDA device `ordinal` (`enable`), so
    /// the caller's own cudaMemcpyAsync from them is truly asynchronous: every batch the workers
    /// build lands there (zero-copy views of mapped files are copied in); stage outputs stay
    /// where the stage built them. Throws zenith::Error with ZENITH_ERR_NO_DEVICE when enabling
    /// without such a device.
    LoaderOptions& pin_memory(std::uint32_t ordinal = 0, bool enable = true) & {
        zenith_error* err = nullptr;
        check(zenith_loader_options_set_pin_memory(raw("pin_memory"), ordinal, enable, &err), err);
        return *this;
    }
    LoaderOptions&& pin_memory(std::uint32_t ordinal = 0, bool enable = true) && {
        return std::move(pin_memory(ordinal, enable));
    }

    /// The C handle (NULL when moved from), still owned by this object.
    const zenith_loader_options* get() const noexcept { return handle_.get(); }
    zenith_loader_options* get() noexcept { return handle_.get(); }

    explicit operator bool() const noexcept { return handle_ != nullptr; }

private:
    zenith_loader_options* raw(const char* setter) {
        if (handle_ == nullptr) {
            throw Error(ZENITH_ERR_NULL_ARGUMENT, std::string("zenith::LoaderOptions::") + setter +
                                                      ": the options are empty (moved from)");
        }
        return handle_.get();
    }

    template <class Value, class Arg>
    LoaderOptions& set(const char* name,
                       zenith_status (*setter)(zenith_loader_options*, Value, zenith_error**),
                       Arg value) {
        zenith_error* err = nullptr;
        check(setter(raw(name), static_cast<Value>(value), &err), err);
        return *this;
    }

    std::unique_ptr<zenith_loader_options, LoaderOptionsDeleter> handle_;
};

// ---- Batch -------------------------------------------------------------------------------------

struct BatchDeleter {
    void operator()(zenith_batch* batch) const noexcept { zenith_batch_free(batch); }
};

/// One batch from a Loader, owned. Export it as Arrow (the whole batch) or as DLPack (one
/// column at a time), as often as needed; exports share its memory (no copy) and outlive it.
/// Move-only; may be read from several threads at once.
class Batch {
public:
    /// An empty batch.
    Batch() noexcept = default;

    /// Takes ownership of a batch from zenith_loader_next_batch (NULL gives an empty Batch).
    explicit Batch(zenith_batch* adopted) noexcept : handle_(adopted) {}

    /// Rows in the batch (0 when empty).
    std::size_t num_rows() const noexcept { return zenith_batch_num_rows(handle_.get()); }

    /// The batch as an Arrow struct array (one child per column) and its schema.
    [[nodiscard]] ArrowBatch export_arrow() const {
        ArrowBatch out;
        zenith_error* err = nullptr;
        check(zenith_batch_export_arrow(raw("export_arrow"), out.array.get(), out.schema.get(),
                                        &err),
              err);
        return out;
    }

    /// The batch as an Arrow struct array, without the schema (see Loader::schema()).
    [[nodiscard]] UniqueArrowArray export_array() const {
        UniqueArrowArray out;
        zenith_error* err = nullptr;
        check(zenith_batch_export_arrow(raw("export_array"), out.get(), nullptr, &err), err);
        return out;
    }

    /// The column named `column` as a DLPack tensor on the CPU: numbers and bools → [rows],
    /// fixed-size lists → [rows, n, ...], fixed-size binary → [rows, width] uint8. Throws
    /// ZENITH_ERR_INVALID_ARGUMENT for an unknown column or one with nulls,
    /// ZENITH_ERR_UNSUPPORTED for a type without a tensor form (strings, ...).
    [[nodiscard]] DLPackTensor column_dlpack(const std::string& column) const {
        DLManagedTensorVersioned* tensor = nullptr;
        zenith_error* err = nullptr;
        check(zenith_batch_column_dlpack(raw("column_dlpack"),
                                         detail::c_str(column, "zenith::Batch::column_dlpack"),
                                         &tensor, &err),
              err);
        return DLPackTensor(tensor);
    }

    /// The column at `index` (schema order) as a DLPack tensor, as column_dlpack() does.
    [[nodiscard]] DLPackTensor column_dlpack_at(std::size_t index) const {
        DLManagedTensorVersioned* tensor = nullptr;
        zenith_error* err = nullptr;
        check(zenith_batch_column_dlpack_by_index(raw("column_dlpack_at"), index, &tensor, &err),
              err);
        return DLPackTensor(tensor);
    }

    /// The C handle (NULL when empty), still owned by this object.
    zenith_batch* get() const noexcept { return handle_.get(); }

    /// Gives up ownership of the C handle (free it with zenith_batch_free); this becomes empty.
    [[nodiscard]] zenith_batch* release() noexcept { return handle_.release(); }

    explicit operator bool() const noexcept { return handle_ != nullptr; }

private:
    const zenith_batch* raw(const char* method) const {
        if (handle_ == nullptr) {
            throw Error(ZENITH_ERR_NULL_ARGUMENT, std::string("zenith::Batch::") + method +
                                                      ": the batch is empty (moved from)");
        }
        return handle_.get();
    }

    std::unique_ptr<zenith_batch, BatchDeleter> handle_;
};

// ---- Loader ------------------------------------------------------------------------------------

struct LoaderDeleter {
    void operator()(zenith_loader* loader) const noexcept { zenith_loader_free(loader); }
};

/// A loader over one dataset (an Arrow IPC, Parquet or CSV file, a directory of shards, or a
/// glob): yields shuffled, sharded batches, one epoch at a time.
///
///     for (zenith::Batch& batch : loader) { ... }   // the rest of the current epoch
///     loader.set_epoch(1);                           // then the next one
///
/// Move-only; use from one thread at a time. Batches and exports outlive it.
class Loader {
public:
    class iterator;
    /// The end of an epoch, for range-for.
    struct sentinel {};

    /// Opens `path` with the default options. Throws zenith::Error: ZENITH_ERR_NOT_FOUND,
    /// ZENITH_ERR_FORMAT, ZENITH_ERR_SCHEMA_MISMATCH, ZENITH_ERR_IO, ZENITH_ERR_UNSUPPORTED, ...
    explicit Loader(const std::string& path) : handle_(open(path, nullptr)) {}

    /// Opens `path` with `options` (only read: they may be changed or destroyed afterwards).
    Loader(const std::string& path, const LoaderOptions& options)
        : handle_(open(path, detail::require(options.get(), "zenith::Loader: LoaderOptions"))) {}

    /// Opens the files of several paths as one dataset, in the order given (each a file, a
    /// directory or a glob), with `options` (only read).
    Loader(const std::vector<std::string>& paths, const LoaderOptions& options)
        : handle_(open_paths(paths,
                             detail::require(options.get(), "zenith::Loader: LoaderOptions"))) {}

    /// Takes ownership of a loader from zenith_loader_open (NULL gives an empty Loader).
    explicit Loader(zenith_loader* adopted) noexcept : handle_(adopted) {}

    /// The schema of the batches: a struct schema (format "+s"), one child per column.
    [[nodiscard]] UniqueArrowSchema schema() const {
        UniqueArrowSchema out;
        zenith_error* err = nullptr;
        check(zenith_loader_schema(raw("schema"), out.get(), &err), err);
        return out;
    }

    /// The next batch of the current epoch, or std::nullopt at its end (and after it, until
    /// set_epoch). On an error nothing is consumed: a later call retries the same batch.
    [[nodiscard]] std::optional<Batch> next() { return next_batch(raw("next")); }

    /// Starts epoch `epoch` (0, 1, 2, ...: the order depends on it) from its first batch.
    void set_epoch(std::uint64_t epoch) {
        zenith_error* err = nullptr;
        check(zenith_loader_set_epoch(raw("set_epoch"), epoch, &err), err);
    }

    /// A small resume token (no data): pass it to LoaderOptions::resume_state to continue with
    /// exactly the batches not yet delivered.
    [[nodiscard]] std::vector<std::uint8_t> save_state() const {
        const zenith_loader* loader = raw("save_state");
        std::vector<std::uint8_t> token(ZENITH_RESUME_STATE_SIZE);
        std::size_t len = 0;
        zenith_error* err = nullptr;
        zenith_status status =
            zenith_loader_save_state(loader, token.data(), token.size(), &len, &err);
        if (status == ZENITH_ERR_BUFFER_TOO_SMALL) {  // a library newer than this header
            zenith_error_free(std::exchange(err, nullptr));
            token.resize(len);
            status = zenith_loader_save_state(loader, token.data(), token.size(), &len, &err);
        }
        check(status, err);
        token.resize(len);
        return token;
    }

    /// Every counter and setting of zenith_stats: rows, batches, bytes, timings, queue depth,
    /// epoch, shuffle mode, workers, numa_node and pinned_workers, io_backend (and the one
    /// requested), io_read_bytes and io_read_ns, rank, world_size and shard_source, memory
    /// budget. May be called from any thread while another consumes batches.
    [[nodiscard]] zenith_stats stats() const {
        zenith_stats out{};
        out.struct_size = sizeof out;
        zenith_error* err = nullptr;
        check(zenith_loader_stats(raw("stats"), &out, &err), err);
        return out;
    }

    /// Why the loader reads with another I/O backend than the one asked for, or without
    /// O_DIRECT though io_direct(true) was set; empty when it runs as asked.
    [[nodiscard]] std::string io_fallback_reason() const {
        zenith_loader* loader = raw("io_fallback_reason");
        std::string text(256, '\0');
        std::size_t len = 0;
        zenith_error* err = nullptr;
        zenith_status status =
            zenith_loader_io_fallback_reason(loader, text.data(), text.size(), &len, &err);
        if (status == ZENITH_ERR_BUFFER_TOO_SMALL) {
            zenith_error_free(std::exchange(err, nullptr));
            text.assign(len + 1, '\0');
            status = zenith_loader_io_fallback_reason(loader, text.data(), text.size(), &len, &err);
        }
        check(status, err);
        text.resize(len);
        return text;
    }

    /// Batches per epoch for this rank (0 when empty).
    std::uint64_t num_batches() const noexcept { return zenith_loader_num_batches(handle_.get()); }

    /// The rest of the current epoch as an Arrow C stream; what it yields is consumed from this
    /// loader. The stream may outlive the Loader.
    [[nodiscard]] UniqueArrowArrayStream export_stream() {
        UniqueArrowArrayStream out;
        zenith_error* err = nullptr;
        check(zenith_loader_export_stream(raw("export_stream"), out.get(), &err), err);
        return out;
    }

    /// Range-for over the rest of the current epoch; fetches the first batch (and may throw).
    iterator begin();
    sentinel end() const noexcept { return {}; }

    /// Frees the loader now (idempotent); batches and exports taken from it stay valid.
    void close() noexcept { handle_.reset(); }

    /// The C handle (NULL when moved from or closed), still owned by this object.
    zenith_loader* get() const noexcept { return handle_.get(); }

    /// Gives up ownership of the C handle (free it with zenith_loader_free); this becomes empty.
    [[nodiscard]] zenith_loader* release() noexcept { return handle_.release(); }

    explicit operator bool() const noexcept { return handle_ != nullptr; }

private:
    static zenith_loader* open(const std::string& path, const zenith_loader_options* options) {
        zenith_loader* loader = nullptr;
        zenith_error* err = nullptr;
        check(zenith_loader_open(detail::c_str(path, "zenith::Loader: path"), options, &loader,
                                 &err),
              err);
        return loader;
    }

    static zenith_loader* open_paths(const std::vector<std::string>& paths,
                                     const zenith_loader_options* options) {
        std::vector<const char*> pointers;
        pointers.reserve(paths.size());
        for (const auto& path : paths) {
            pointers.push_back(detail::c_str(path, "zenith::Loader: paths"));
        }
        zenith_loader* loader = nullptr;
        zenith_error* err = nullptr;
        check(zenith_loader_open_paths(pointers.empty() ? nullptr : pointers.data(),
                                       pointers.size(), options, &loader, &err),
              err);
        return loader;
    }

    static std::optional<Batch> next_batch(zenith_loader* loader) {
        zenith_batch* batch = nullptr;
        zenith_error* err = nullptr;
        if (check(zenith_loader_next_batch(loader, &batch, &err), err) == ZENITH_DONE) {
            return std::nullopt;
        }
        return Batch(batch);
    }

    zenith_loader* raw(const char* method) const {
        if (handle_ == nullptr) {
            throw Error(ZENITH_ERR_NULL_ARGUMENT, std::string("zenith::Loader::") + method +
                                                      ": the loader is empty (moved from or "
                                                      "closed)");
        }
        return handle_.get();
    }

    std::unique_ptr<zenith_loader, LoaderDeleter> handle_;
};

/// A single-pass, move-only input iterator over the rest of an epoch. `*it` is the current
/// Batch; it may be moved out (to keep it past the step). Holds the C handle, not the Loader, so
/// it survives a move of the Loader, but not its destruction or close().
class Loader::iterator {
public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    /// An iterator at the end.
    iterator() noexcept = default;

    iterator(iterator&&) noexcept = default;
    iterator& operator=(iterator&&) noexcept = default;
    iterator(const iterator&) = delete;
    iterator& operator=(const iterator&) = delete;
    ~iterator() = default;

    Batch& operator*() const noexcept { return current_; }
    Batch* operator->() const noexcept { return &current_; }

    /// Fetches the next batch (may throw zenith::Error; the iterator then stays where it was).
    iterator& operator++() {
        std::optional<Batch> next = Loader::next_batch(loader_);
        if (next) {
            current_ = std::move(*next);
        } else {
            current_ = Batch();
            loader_ = nullptr;
        }
        return *this;
    }
    void operator++(int) { ++*this; }

    friend bool operator==(const iterator& it, sentinel) noexcept { return it.loader_ == nullptr; }
    friend bool operator!=(const iterator& it, sentinel end) noexcept { return !(it == end); }
    friend bool operator==(sentinel end, const iterator& it) noexcept { return it == end; }
    friend bool operator!=(sentinel end, const iterator& it) noexcept { return !(it == end); }

private:
    friend class Loader;
    explicit iterator(zenith_loader* loader) : loader_(loader) { ++*this; }

    zenith_loader* loader_ = nullptr;
    mutable Batch current_;
};

inline Loader::iterator Loader::begin() { return iterator(raw("begin")); }

// ---- Gang scheduler (zenith_scheduler_*) -------------------------------------------------------
//
// A deterministic decision core with an injected clock: every call that depends on time takes
// `now_ms`. Build nodes and jobs with NodeSpec and JobSpec, call Scheduler::schedule(now_ms) and
// act on the decisions; a Scheduler with a journal path restores itself from that file.

/// A job's state (the ZENITH_JOB_* values).
enum class JobState : zenith_job_state {
    Pending = ZENITH_JOB_PENDING,
    Queued = ZENITH_JOB_QUEUED,
    Scheduled = ZENITH_JOB_SCHEDULED,
    Running = ZENITH_JOB_RUNNING,
    Suspended = ZENITH_JOB_SUSPENDED,
    Completed = ZENITH_JOB_COMPLETED,
    Failed = ZENITH_JOB_FAILED,
    Cancelled = ZENITH_JOB_CANCELLED,
};

/// Where a gang's members may go relative to each other (the ZENITH_LOCALITY_* values).
enum class Locality : zenith_locality {
    Any = ZENITH_LOCALITY_ANY,
    SameNode = ZENITH_LOCALITY_SAME_NODE,
    SameIsland = ZENITH_LOCALITY_SAME_ISLAND,
    SameRack = ZENITH_LOCALITY_SAME_RACK,
    Spread = ZENITH_LOCALITY_SPREAD,
};

struct NodeSpecDeleter {
    void operator()(zenith_node_spec* p) const noexcept { zenith_node_spec_free(p); }
};
struct JobSpecDeleter {
    void operator()(zenith_job_spec* p) const noexcept { zenith_job_spec_free(p); }
};
struct SchedulerDeleter {
    void operator()(zenith_scheduler* p) const noexcept { zenith_scheduler_free(p); }
};
struct DecisionsDeleter {
    void operator()(zenith_scheduler_decisions* p) const noexcept {
        zenith_scheduler_decisions_free(p);
    }
};
struct SchedulerOptionsDeleter {
    void operator()(zenith_scheduler_options* p) const noexcept {
        zenith_scheduler_options_free(p);
    }
};

/// A node: CPUs (milli-CPUs), memory (MiB), GPUs, NVLink islands, labels. Setters chain and
/// throw zenith::Error on a bad value. Move-only; the scheduler copies it.
class NodeSpec {
public:
    NodeSpec(const std::string& name, std::uint64_t cpu_milli, std::uint64_t memory_mib) {
        zenith_node_spec* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_node_spec_new(detail::c_str(name, "name"), cpu_milli, memory_mib, &raw, &err),
              err);
        handle_.reset(raw);
    }
    /// Appends `count` GPUs of one type (indices in the order added).
    NodeSpec& gpus(std::uint32_t count, const std::string& type, std::uint64_t memory_mib = 0) {
        zenith_error* err = nullptr;
        check(zenith_node_spec_add_gpus(get(), count, detail::c_str(type, "type"), memory_mib, &err),
              err);
        return *this;
    }
    /// Adds an NVLink island of GPU indices.
    NodeSpec& island(const std::vector<std::uint32_t>& indices) {
        zenith_error* err = nullptr;
        check(zenith_node_spec_add_nvlink_island(get(), indices.data(), indices.size(), &err), err);
        return *this;
    }
    /// Sets a label: "rack", "switch" or "zone".
    NodeSpec& label(const std::string& key, const std::string& value) {
        zenith_error* err = nullptr;
        check(zenith_node_spec_set_label(get(), detail::c_str(key, "key"),
                                         detail::c_str(value, "value"), &err),
              err);
        return *this;
    }
    /// The C handle (owned by this object).
    zenith_node_spec* get() const { return detail::require(handle_.get(), "zenith::NodeSpec"); }

private:
    std::unique_ptr<zenith_node_spec, NodeSpecDeleter> handle_;
};

/// A job: `gang` members that start together, each with its GPUs, CPUs and memory; policy and
/// command. Setters chain and throw zenith::Error on a bad value; rules between fields are
/// checked by validate() and by Scheduler::submit. Move-only; the scheduler copies it.
class JobSpec {
public:
    JobSpec(std::uint64_t id, const std::string& name) {
        zenith_job_spec* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_job_spec_new(id, detail::c_str(name, "name"), &raw, &err), err);
        handle_.reset(raw);
    }
    JobSpec& user(const std::string& v) { return text(zenith_job_spec_set_user, v, "user"); }
    JobSpec& queue(const std::string& v) { return text(zenith_job_spec_set_queue, v, "queue"); }
    JobSpec& gpus(std::uint32_t n) { return num(zenith_job_spec_set_gpus, n); }
    JobSpec& gpu_share(std::uint32_t milli) { return num(zenith_job_spec_set_gpu_share, milli); }
    JobSpec& gpu_type(const std::string& v) {
        return text(zenith_job_spec_add_gpu_type, v, "gpu_type");
    }
    JobSpec& cpus(std::uint64_t milli) { return num(zenith_job_spec_set_cpus, milli); }
    JobSpec& memory(std::uint64_t mib) { return num(zenith_job_spec_set_memory, mib); }
    JobSpec& gang(std::uint32_t size, Locality locality = Locality::Any) {
        zenith_error* err = nullptr;
        check(zenith_job_spec_set_gang(get(), size, static_cast<zenith_locality>(locality), &err),
              err);
        return *this;
    }
    JobSpec& priority(std::int32_t tier, bool preemptible) {
        zenith_error* err = nullptr;
        check(zenith_job_spec_set_priority(get(), tier, preemptible ? 1 : 0, &err), err);
        return *this;
    }
    JobSpec& restartable(bool yes) { return num(zenith_job_spec_set_restartable, yes ? 1 : 0); }
    JobSpec& max_runtime(std::uint64_t ms) { return num(zenith_job_spec_set_max_runtime, ms); }
    JobSpec& command(const std::string& program) {
        return text(zenith_job_spec_set_command, program, "program");
    }
    JobSpec& arg(const std::string& v) { return text(zenith_job_spec_add_arg, v, "arg"); }
    JobSpec& env(const std::string& name, const std::string& value) {
        zenith_error* err = nullptr;
        check(zenith_job_spec_add_env(get(), detail::c_str(name, "name"),
                                      detail::c_str(value, "value"), &err),
              err);
        return *this;
    }
    /// Checks every field as submit does (throws zenith::Error naming the field).
    void validate() const {
        zenith_error* err = nullptr;
        check(zenith_job_spec_validate(get(), &err), err);
    }
    /// The C handle (owned by this object).
    zenith_job_spec* get() const { return detail::require(handle_.get(), "zenith::JobSpec"); }

private:
    template <class F, class V>
    JobSpec& num(F f, V v) {
        zenith_error* err = nullptr;
        check(f(get(), v, &err), err);
        return *this;
    }
    template <class F>
    JobSpec& text(F f, const std::string& v, const char* what) {
        zenith_error* err = nullptr;
        check(f(get(), detail::c_str(v, what), &err), err);
        return *this;
    }
    std::unique_ptr<zenith_job_spec, JobSpecDeleter> handle_;
};

struct QueueSpecDeleter {
    void operator()(zenith_queue_spec* p) const noexcept { zenith_queue_spec_free(p); }
};

/// A queue with a quota (Kueue's ClusterQueue): limits in milli-GPUs, milli-CPUs and MiB,
/// a cohort that lends and borrows, a fair-share weight. Move-only.
class QueueSpec {
public:
    explicit QueueSpec(const std::string& name) {
        zenith_queue_spec* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_queue_spec_new(detail::c_str(name, "name"), &raw, &err), err);
        handle_.reset(raw);
    }
    /// Sets a limit: ZENITH_QUEUE_NOMINAL, ZENITH_QUEUE_BORROWING_LIMIT or
    /// ZENITH_QUEUE_LENDING_LIMIT.
    QueueSpec& limit(zenith_queue_limit which, std::uint64_t gpu_milli, std::uint64_t cpu_milli,
                     std::uint64_t memory_mib) {
        zenith_error* err = nullptr;
        check(zenith_queue_spec_set_limit(get(), which, gpu_milli, cpu_milli, memory_mib, &err),
              err);
        return *this;
    }
    /// Puts the queue in a cohort (empty: none) with a fair-share weight.
    QueueSpec& cohort(const std::string& name, std::uint32_t weight = 1) {
        zenith_error* err = nullptr;
        check(zenith_queue_spec_set_cohort(
                  get(), name.empty() ? nullptr : detail::c_str(name, "cohort"), weight, &err),
              err);
        return *this;
    }
    /// The C handle (owned by this object).
    zenith_queue_spec* get() const { return detail::require(handle_.get(), "zenith::QueueSpec"); }

private:
    std::unique_ptr<zenith_queue_spec, QueueSpecDeleter> handle_;
};

/// Where one gang member runs: the node and its GPU indices (with milli-GPUs, 1000 = whole).
struct Member {
    std::uint32_t node_id = 0;
    std::string node;
    std::vector<std::uint32_t> gpus;
    std::vector<std::uint32_t> gpu_milli;
};

/// One decision of a pass (kind: ZENITH_DECISION_*, reason: ZENITH_REASON_*).
struct Decision {
    zenith_decision_kind kind = ZENITH_DECISION_START;
    std::uint64_t job = 0;
    std::uint64_t by = 0;
    zenith_decision_reason reason = ZENITH_REASON_NONE;
    std::vector<Member> members;
};

namespace detail {
inline std::vector<Decision> read_decisions(zenith_scheduler_decisions* raw) {
    std::unique_ptr<zenith_scheduler_decisions, DecisionsDeleter> owned(raw);
    std::vector<Decision> out;
    const std::size_t n = zenith_scheduler_decisions_len(raw);
    for (std::size_t i = 0; i < n; ++i) {
        zenith_scheduler_decision d{};
        d.struct_size = sizeof d;
        zenith_error* err = nullptr;
        check(zenith_scheduler_decisions_get(raw, i, &d, &err), err);
        Decision decision;
        decision.kind = d.kind;
        decision.job = d.job;
        decision.by = d.by;
        decision.reason = d.reason;
        for (std::size_t m = 0; m < d.members; ++m) {
            zenith_scheduler_member info{};
            info.struct_size = sizeof info;
            check(zenith_scheduler_decisions_member(raw, i, m, &info, &err), err);
            Member member;
            member.node_id = info.node_id;
            member.node = info.node_name;
            for (std::size_t g = 0; g < info.gpus; ++g) {
                std::uint32_t index = 0, milli = 0;
                check(zenith_scheduler_decisions_member_gpu(raw, i, m, g, &index, &milli, &err),
                      err);
                member.gpus.push_back(index);
                member.gpu_milli.push_back(milli);
            }
            decision.members.push_back(std::move(member));
        }
        out.push_back(std::move(decision));
    }
    return out;
}
}  // namespace detail

/// Options of a Scheduler: the policy ("zenith", "fifo", "first-fit", "best-fit", "sjf") and an
/// optional journal file (restored from when it exists).
struct SchedulerOptions {
    std::string policy = "zenith";
    std::string journal;
    bool journal_sync = false;
};

/// A gang scheduler. Move-only; thread-safe (calls are serialized inside the library).
class Scheduler {
public:
    explicit Scheduler(const SchedulerOptions& options = {}) {
        zenith_scheduler_options* raw_opts = nullptr;
        zenith_error* err = nullptr;
        check(zenith_scheduler_options_new(&raw_opts, &err), err);
        std::unique_ptr<zenith_scheduler_options, SchedulerOptionsDeleter> opts(raw_opts);
        check(zenith_scheduler_options_set_policy(opts.get(),
                                                  detail::c_str(options.policy, "policy"), &err),
              err);
        if (!options.journal.empty()) {
            check(zenith_scheduler_options_set_journal(
                      opts.get(), detail::c_str(options.journal, "journal"),
                      options.journal_sync ? 1 : 0, &err),
                  err);
        }
        zenith_scheduler* raw = nullptr;
        check(zenith_scheduler_new(opts.get(), &raw, &err), err);
        handle_.reset(raw);
    }

    /// Adds a node; returns its id.
    std::uint32_t add_node(const NodeSpec& spec, std::uint64_t now_ms) {
        std::uint32_t id = 0;
        zenith_error* err = nullptr;
        check(zenith_scheduler_node_add(get(), spec.get(), now_ms, &id, &err), err);
        return id;
    }
    void remove_node(const std::string& name, std::uint64_t now_ms) {
        node_call(zenith_scheduler_node_remove, name, now_ms);
    }
    void heartbeat(const std::string& name, std::uint64_t now_ms) {
        node_call(zenith_scheduler_node_heartbeat, name, now_ms);
    }
    void drain(const std::string& name, std::uint64_t now_ms) {
        node_call(zenith_scheduler_node_drain, name, now_ms);
    }
    void undrain(const std::string& name, std::uint64_t now_ms) {
        node_call(zenith_scheduler_node_undrain, name, now_ms);
    }

    /// Adds or replaces a queue and its quota.
    void set_queue(const QueueSpec& spec) {
        zenith_error* err = nullptr;
        check(zenith_scheduler_set_queue(get(), spec.get(), &err), err);
    }

    void submit(const JobSpec& spec, std::uint64_t now_ms) {
        zenith_error* err = nullptr;
        check(zenith_scheduler_submit(get(), spec.get(), now_ms, &err), err);
    }
    void cancel(std::uint64_t job, std::uint64_t now_ms) {
        job_call(zenith_scheduler_cancel, job, now_ms);
    }
    void job_started(std::uint64_t job, std::uint64_t now_ms) {
        job_call(zenith_scheduler_job_started, job, now_ms);
    }
    void job_progress(std::uint64_t job, std::uint64_t now_ms) {
        job_call(zenith_scheduler_job_progress, job, now_ms);
    }
    void job_completed(std::uint64_t job, std::uint64_t now_ms) {
        job_call(zenith_scheduler_job_completed, job, now_ms);
    }
    void job_failed(std::uint64_t job, std::uint64_t now_ms) {
        job_call(zenith_scheduler_job_failed, job, now_ms);
    }

    /// One scheduling pass: the decisions, in the order to act on them.
    std::vector<Decision> schedule(std::uint64_t now_ms) {
        zenith_scheduler_decisions* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_scheduler_schedule(get(), now_ms, &raw, &err), err);
        return detail::read_decisions(raw);
    }

    JobState job_state(std::uint64_t job) const {
        zenith_job_state state = 0;
        zenith_error* err = nullptr;
        check(zenith_scheduler_job_state(get(), job, &state, &err), err);
        return static_cast<JobState>(state);
    }

    /// TEST_ONLY: a placement the job could get now, or nothing.
    std::optional<std::vector<Member>> test_only(const JobSpec& spec) const {
        zenith_scheduler_decisions* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_scheduler_test_only(get(), spec.get(), &raw, &err), err);
        auto decisions = detail::read_decisions(raw);
        if (decisions.empty()) {
            return std::nullopt;
        }
        return std::move(decisions.front().members);
    }

    /// WILL_RUN: the earliest start (ms) from the running jobs' time limits, or nothing.
    std::optional<std::uint64_t> will_run(const JobSpec& spec) const {
        std::uint64_t at = 0;
        zenith_error* err = nullptr;
        if (check(zenith_scheduler_will_run(get(), spec.get(), &at, &err), err) == ZENITH_DONE) {
            return std::nullopt;
        }
        return at;
    }

    zenith_scheduler_stats stats() const {
        zenith_scheduler_stats s{};
        s.struct_size = sizeof s;
        zenith_error* err = nullptr;
        check(zenith_scheduler_get_stats(get(), &s, &err), err);
        return s;
    }

    /// The C handle (owned by this object).
    zenith_scheduler* get() const { return detail::require(handle_.get(), "zenith::Scheduler"); }

private:
    template <class F>
    void node_call(F f, const std::string& name, std::uint64_t now_ms) {
        zenith_error* err = nullptr;
        check(f(get(), detail::c_str(name, "name"), now_ms, &err), err);
    }
    template <class F>
    void job_call(F f, std::uint64_t job, std::uint64_t now_ms) {
        zenith_error* err = nullptr;
        check(f(get(), job, now_ms, &err), err);
    }
    std::unique_ptr<zenith_scheduler, SchedulerDeleter> handle_;
};


// ---- Event engine (zenith_engine_*, zenith_stage_*) --------------------------------------------
//
// Events are Arrow record batches (struct arrays through the C Data Interface). An Engine runs
// each published event through its stages on worker threads, in parallel across events, and
// poll() returns them in publish order; a failed event comes out in its place as
// zenith::EventFailed. Stages (WASM plugins or C++ callables) are fixed when the Engine is
// created from its EngineOptions.
//
//     zenith::Engine engine(zenith::EngineOptions().workers(4).stage(
//         zenith::Stage::wasm("build/plugins/normalize.wasm")));
//     engine.publish(batch);                          // zenith::ArrowBatch, moved into the engine
//     std::optional<zenith::Event> out = engine.poll();

/// A wait without a deadline, for Engine::publish and Engine::poll.
inline constexpr std::uint64_t forever = UINT64_MAX;

/// An engine event that failed in a stage (a plugin's trap, timeout, out-of-memory or malformed
/// result, or a native stage's error): thrown by Engine::poll in the event's place. code() is
/// ZENITH_ERR_EVENT_FAILED, what() names the event, the stage and the reason. The engine goes on.
class EventFailed : public Error {
public:
    EventFailed(const std::string& message, std::uint64_t sequence)
        : Error(ZENITH_ERR_EVENT_FAILED, message), sequence_(sequence) {}

    /// The failed event's sequence number (as Engine::publish returned it).
    std::uint64_t sequence() const noexcept { return sequence_; }

private:
    std::uint64_t sequence_;
};

struct StageDeleter {
    void operator()(zenith_stage* p) const noexcept { zenith_stage_free(p); }
};
struct EngineOptionsDeleter {
    void operator()(zenith_engine_options* p) const noexcept { zenith_engine_options_free(p); }
};
struct EngineDeleter {
    void operator()(zenith_engine* p) const noexcept { zenith_engine_free(p); }
};

/// A transform stage: a sandboxed WASM plugin or a native callable. Move-only; EngineOptions and
/// engines share the stage, which lives until the last of them (and this handle) is gone.
class Stage {
public:
    /// A WASM stage from a plugin file (plugin ABI v1, docs/plugins.md). `memory_limit` in bytes
    /// per instance (0: 256 MiB), `time_limit_ms` of CPU time per event (0: 1000 ms). Throws
    /// ZENITH_ERR_NOT_FOUND for a missing file, ZENITH_ERR_INVALID_ARGUMENT for a bad module.
    /// `config`: opaque bytes each instance reads once through the plugin's zn_configure export
    /// (e.g. normalize's fixed mean and std as two little-endian doubles); a plugin that refuses
    /// them or cannot read them throws ZENITH_ERR_INVALID_ARGUMENT.
    static Stage wasm(const std::string& path, std::uint64_t memory_limit = 0,
                      std::uint64_t time_limit_ms = 0,
                      const std::vector<std::uint8_t>& config = {}) {
        zenith_stage* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_stage_new_wasm_config(detail::c_str(path, "path"), memory_limit,
                                           time_limit_ms, config.data(), config.size(), &raw,
                                           &err),
              err);
        return Stage(raw);
    }

    /// A native stage from the C callback itself (see zenith_stage_callback).
    static Stage native(const std::string& name, zenith_stage_callback callback,
                        void* user_data = nullptr,
                        zenith_stage_free_callback free_user_data = nullptr) {
        zenith_stage* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_stage_new_native(detail::c_str(name, "name"), callback, user_data,
                                      free_user_data, &raw, &err),
              err);
        return Stage(raw);
    }

    /// A native stage that calls `fn(ArrowBatch&& in) -> ArrowBatch` for each event, from the
    /// engine's worker threads, several at once (so `fn` must be thread-safe). An exception fails
    /// that event, its what() in the failure's message. The returned batch must be a struct
    /// array without top-level nulls (a record batch).
    template <class F>
    static Stage native(const std::string& name, F fn) {
        auto* state = new F(std::move(fn));
        zenith_stage* raw = nullptr;
        zenith_error* err = nullptr;
        zenith_status status = zenith_stage_new_native(
            detail::c_str(name, "name"), &call_native<F>, state, &free_native<F>, &raw, &err);
        if (status < 0) {
            delete state;  // on failure the library does not call free_native
        }
        check(status, err);
        return Stage(raw);
    }

    /// The C handle (owned by this object).
    zenith_stage* get() const { return detail::require(handle_.get(), "zenith::Stage"); }

private:
    explicit Stage(zenith_stage* raw) : handle_(raw) {}

    template <class F>
    static std::int32_t call_native(void* user_data, ArrowArray* in_array, ArrowSchema* in_schema,
                                    ArrowArray* out_array, ArrowSchema* out_schema, char* error,
                                    std::size_t capacity) noexcept {
        const char* message = "unknown exception";
        std::string text;
        try {
            ArrowBatch in{UniqueArrowArray(in_array), UniqueArrowSchema(in_schema)};
            ArrowBatch out = (*static_cast<F*>(user_data))(std::move(in));
            if (!out.array || !out.schema) {
                message = "the stage returned an empty batch";
            } else {
                *out_array = out.array.release();
                *out_schema = out.schema.release();
                return 0;
            }
        } catch (const std::exception& e) {
            text = e.what();
            message = text.c_str();
        } catch (...) {
        }
        if (error != nullptr && capacity > 0) {
            std::size_t n = std::char_traits<char>::length(message);
            if (n >= capacity) {
                n = capacity - 1;
            }
            std::char_traits<char>::copy(error, message, n);
            error[n] = '\0';
        }
        return 1;
    }

    template <class F>
    static void free_native(void* user_data) noexcept {
        delete static_cast<F*>(user_data);
    }

    std::unique_ptr<zenith_stage, StageDeleter> handle_;
};

inline LoaderOptions& LoaderOptions::stage(const Stage& s) & {
    zenith_error* err = nullptr;
    check(zenith_loader_options_add_stage(raw("stage"), s.get(), &err), err);
    return *this;
}

/// Options for an Engine: queue bounds, workers and stages (zenith_engine_options_*). Setters
/// chain and throw zenith::Error on a bad value. Move-only; the engine copies them.
class EngineOptions {
public:
    /// The defaults: 4096 events and 1 GiB in flight, 2 workers, no stages.
    EngineOptions() {
        zenith_engine_options* raw = nullptr;
        check(zenith_engine_options_new(&raw));
        handle_.reset(raw);
    }
    /// At most `events` events and `bytes` bytes in flight (published, not yet polled).
    EngineOptions& capacity(std::size_t events, std::uint64_t bytes = std::uint64_t{1} << 30) {
        zenith_error* err = nullptr;
        check(zenith_engine_options_set_capacity(get(), events, bytes, &err), err);
        return *this;
    }
    /// Worker threads running the stages (1 to 1024).
    EngineOptions& workers(std::size_t n) {
        zenith_error* err = nullptr;
        check(zenith_engine_options_set_workers(get(), n, &err), err);
        return *this;
    }
    /// Pins each worker to these CPUs (the kernel's numbers; empty: no pinning).
    EngineOptions& cpus(const std::vector<std::uint32_t>& cpus) {
        zenith_error* err = nullptr;
        check(zenith_engine_options_set_cpus(get(), cpus.data(), cpus.size(), &err), err);
        return *this;
    }
    /// Pins each worker to the online CPUs of NUMA node `node` (-1: no pinning); throws
    /// ZENITH_ERR_INVALID_ARGUMENT for a node the machine does not have.
    EngineOptions& numa_node(std::int32_t node) {
        zenith_error* err = nullptr;
        check(zenith_engine_options_set_numa_node(get(), node, &err), err);
        return *this;
    }
    /// Appends a stage to the chain (the options share it).
    EngineOptions& stage(const Stage& s) {
        zenith_error* err = nullptr;
        check(zenith_engine_options_add_stage(get(), s.get(), &err), err);
        return *this;
    }
    /// The C handle (owned by this object).
    zenith_engine_options* get() const {
        return detail::require(handle_.get(), "zenith::EngineOptions");
    }

private:
    std::unique_ptr<zenith_engine_options, EngineOptionsDeleter> handle_;
};

/// One event out of Engine::poll: its sequence number and its (transformed) batch.
struct Event {
    std::uint64_t sequence = 0;
    ArrowBatch batch;
};

/// An event engine (zenith_engine_*). Move-only; the destructor stops it and releases the events
/// still in flight. publish() and poll() may be called from several threads at once.
class Engine {
public:
    explicit Engine(const EngineOptions& options = EngineOptions()) {
        zenith_engine* raw = nullptr;
        zenith_error* err = nullptr;
        check(zenith_engine_new(options.get(), &raw, &err), err);
        handle_.reset(raw);
    }

    /// Publishes `batch`, waiting at most `timeout_ms` for room. Returns its sequence number; the
    /// batch is moved into the engine (left empty). Returns std::nullopt when the engine stayed
    /// full: the batch is the caller's again, unchanged, for a retry. Throws zenith::Error
    /// (ZENITH_ERR_INVALID_ARGUMENT: not a record batch, or the engine is shut down; the batch is
    /// then consumed).
    std::optional<std::uint64_t> publish(ArrowBatch& batch, std::uint64_t timeout_ms = forever) {
        return publish(batch.array.get(), batch.schema.get(), timeout_ms);
    }

    /// publish() on raw C structs the caller owns (moved on success, as the C call does).
    std::optional<std::uint64_t> publish(ArrowArray* array, ArrowSchema* schema,
                                         std::uint64_t timeout_ms = forever) {
        std::uint64_t sequence = 0;
        zenith_error* err = nullptr;
        if (check(zenith_engine_publish(get(), array, schema, timeout_ms, &sequence, &err), err) ==
            ZENITH_WOULD_BLOCK) {
            return std::nullopt;
        }
        return sequence;
    }

    /// The next event in publish order, waiting at most `timeout_ms`; std::nullopt when it is not
    /// done in time. Throws zenith::EventFailed in a failed event's place (the next poll returns
    /// the following event).
    std::optional<Event> poll(std::uint64_t timeout_ms = forever) {
        Event event;
        zenith_error* err = nullptr;
        zenith_status status = zenith_engine_poll(get(), event.batch.array.get(),
                                                  event.batch.schema.get(), &event.sequence,
                                                  timeout_ms, &err);
        if (status == ZENITH_ERR_EVENT_FAILED) {
            std::unique_ptr<zenith_error, ErrorDeleter> owned(std::exchange(err, nullptr));
            throw EventFailed(owned ? zenith_error_message(owned.get()) : "event failed",
                              event.sequence);
        }
        if (check(status, err) == ZENITH_WOULD_BLOCK) {
            return std::nullopt;
        }
        return event;
    }

    /// Stops the engine (publishers are refused from now on) and releases every event not yet
    /// polled; returns how many. A second call returns 0. The destructor does this too.
    std::uint64_t shutdown() {
        std::uint64_t released = 0;
        zenith_error* err = nullptr;
        check(zenith_engine_shutdown(get(), &released, &err), err);
        return released;
    }

    /// The C handle (owned by this object).
    zenith_engine* get() const { return detail::require(handle_.get(), "zenith::Engine"); }

private:
    std::unique_ptr<zenith_engine, EngineDeleter> handle_;
};

}  // namespace zenith

#endif  // ZENITH_HPP
