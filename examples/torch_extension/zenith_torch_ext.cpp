// A PyTorch C++ extension that embeds libzenith: it opens a loader through the C API and returns
// each batch as a dict of torch::Tensor built with at::fromDLPack, sharing the batch's memory
// (no copy). Built by setup.py in this folder (pkg-config finds libzenith).
//
//   import torch, zenith_torch_ext
//   loader = zenith_torch_ext.Loader("train.arrow", batch_size=1024, shuffle=True, seed=0,
//                                    columns=["features", "label"])
//   for batch in loader:          # {"features": tensor, "label": tensor}
//       ...

// ATen's dlpack.h first: zenith.h then uses its DLPack types instead of declaring its own.
#include <ATen/DLConvertor.h>
#include <torch/extension.h>
#include <pybind11/stl.h>  // std::optional, std::map, std::vector

#include <zenith.h>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// at::fromDLPackVersioned (DLPack 1.x) exists from PyTorch 2.9; older versions only take the
// legacy DLManagedTensor, which `legacy_from_versioned` builds.
#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9))
#define ZENITH_EXT_HAS_VERSIONED 1
#else
#define ZENITH_EXT_HAS_VERSIONED 0
#endif

namespace {

// Runs `call(&err)`, a fallible zenith call, and returns its status; throws the library's message
// (pybind11 turns it into RuntimeError) for an error, freeing it.
template <class Call>
zenith_status checked(Call call) {
    zenith_error *err = nullptr;
    zenith_status status = call(&err);
    if (status >= 0) return status;
    std::string message = err ? zenith_error_message(err) : zenith_status_str(status);
    zenith_error_free(err);
    throw std::runtime_error("zenith: " + message);
}

struct LoaderDeleter {
    void operator()(zenith_loader *l) const { zenith_loader_free(l); }
};
struct BatchDeleter {
    void operator()(zenith_batch *b) const { zenith_batch_free(b); }
};
struct OptionsDeleter {
    void operator()(zenith_loader_options *o) const { zenith_loader_options_free(o); }
};

// A legacy (DLPack 0.x) DLManagedTensor over a versioned one: same view; deleting it deletes the
// versioned tensor.
DLManagedTensor *legacy_from_versioned(DLManagedTensorVersioned *versioned) {
    auto *legacy = new DLManagedTensor{};
    legacy->dl_tensor = versioned->dl_tensor;
    legacy->manager_ctx = versioned;
    legacy->deleter = [](DLManagedTensor *self) {
        auto *inner = static_cast<DLManagedTensorVersioned *>(self->manager_ctx);
        inner->deleter(inner);
        delete self;
    };
    return legacy;
}

class Loader {
  public:
    Loader(const std::string &path, size_t batch_size, bool shuffle, uint64_t seed,
           std::vector<std::string> columns, bool legacy_dlpack)
        : legacy_(legacy_dlpack || !ZENITH_EXT_HAS_VERSIONED) {
        zenith_loader_options *raw_opts = nullptr;
        checked([&](zenith_error **) { return zenith_loader_options_new(&raw_opts); });
        std::unique_ptr<zenith_loader_options, OptionsDeleter> opts(raw_opts);
        checked([&](zenith_error **err) {
            return zenith_loader_options_set_batch_size(opts.get(), batch_size, err);
        });
        checked([&](zenith_error **err) {
            return zenith_loader_options_set_shuffle(
                opts.get(), shuffle ? ZENITH_SHUFFLE_GLOBAL : ZENITH_SHUFFLE_NONE, err);
        });
        checked([&](zenith_error **err) { return zenith_loader_options_set_seed(opts.get(), seed, err); });
        if (!columns.empty()) {
            std::vector<const char *> names;
            for (const auto &c : columns) names.push_back(c.c_str());
            checked([&](zenith_error **err) {
                return zenith_loader_options_set_columns(opts.get(), names.data(), names.size(), err);
            });
        }
        zenith_loader *raw = nullptr;
        checked([&](zenith_error **err) { return zenith_loader_open(path.c_str(), opts.get(), &raw, err); });
        loader_.reset(raw);

        // Column names, from the loader's schema (a struct schema, one child per column).
        struct ArrowSchema schema;
        checked([&](zenith_error **err) { return zenith_loader_schema(loader_.get(), &schema, err); });
        for (int64_t i = 0; i < schema.n_children; ++i) names_.emplace_back(schema.children[i]->name);
        schema.release(&schema);
    }

    // The next batch as {column: tensor}, or std::nullopt at the end of the epoch.
    std::optional<std::map<std::string, torch::Tensor>> next() {
        zenith_batch *raw = nullptr;
        zenith_status status = checked([&](zenith_error **err) {
            pybind11::gil_scoped_release no_gil;  // workers may still be building this batch
            return zenith_loader_next_batch(loader_.get(), &raw, err);
        });
        if (status == ZENITH_DONE) return std::nullopt;
        std::unique_ptr<zenith_batch, BatchDeleter> batch(raw);  // tensors outlive it

        std::map<std::string, torch::Tensor> out;
        for (size_t i = 0; i < names_.size(); ++i) {
            DLManagedTensorVersioned *dl = nullptr;
            checked([&](zenith_error **err) {
                return zenith_batch_column_dlpack_by_index(batch.get(), i, &dl, err);
            });
            void *data = static_cast<char *>(dl->dl_tensor.data) + dl->dl_tensor.byte_offset;
            torch::Tensor tensor;
#if ZENITH_EXT_HAS_VERSIONED
            if (!legacy_) {
                tensor = at::fromDLPackVersioned(dl);  // takes ownership of dl
            } else
#endif
            {
                tensor = at::fromDLPack(legacy_from_versioned(dl));
            }
            // No copy: the tensor points at the batch's memory.
            TORCH_CHECK(tensor.numel() == 0 || tensor.data_ptr() == data,
                        "zenith: at::fromDLPack copied column ", names_[i]);
            out.emplace(names_[i], std::move(tensor));
        }
        return out;
    }

    uint64_t num_batches() const { return zenith_loader_num_batches(loader_.get()); }

    void set_epoch(uint64_t epoch) {
        checked([&](zenith_error **err) { return zenith_loader_set_epoch(loader_.get(), epoch, err); });
    }

    const std::vector<std::string> &column_names() const { return names_; }
    bool legacy() const { return legacy_; }

  private:
    std::unique_ptr<zenith_loader, LoaderDeleter> loader_;
    std::vector<std::string> names_;
    bool legacy_;
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "libzenith batches as torch tensors (at::fromDLPack, no copy)";
    m.def("zenith_version", [] { return std::string(zenith_version()); });
    pybind11::class_<Loader>(m, "Loader")
        .def(pybind11::init<const std::string &, size_t, bool, uint64_t, std::vector<std::string>, bool>(),
             pybind11::arg("path"), pybind11::arg("batch_size") = ZENITH_DEFAULT_BATCH_SIZE,
             pybind11::arg("shuffle") = true, pybind11::arg("seed") = 0,
             pybind11::arg("columns") = std::vector<std::string>{},
             pybind11::arg("legacy_dlpack") = false)
        .def("next", &Loader::next, "The next batch as a dict of tensors, or None at the end of the epoch")
        .def("__len__", &Loader::num_batches)
        .def("set_epoch", &Loader::set_epoch)
        .def_property_readonly("column_names", &Loader::column_names)
        .def_property_readonly("legacy_dlpack", &Loader::legacy)
        .def("__iter__", [](pybind11::object self) { return self; })
        .def("__next__", [](Loader &self) {
            auto batch = self.next();
            if (!batch) throw pybind11::stop_iteration();
            return *batch;
        });
}
